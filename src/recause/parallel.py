"""Where the naturally parallel work inside a stage runs: in this process, or on a Dask cluster.

A stage opens a runner from ``orchestration`` params and maps a top-level (picklable) function of
``src/recause`` over items that each carry their own seed, so the numbers do not depend on where or
in which order items run. Workers only compute: results come back in input order to the stage
process, which writes every output (DVC owns them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from recause.config.orchestration import OrchestrationParams
from recause.errors import ParamsError

T = TypeVar("T")
R = TypeVar("R")
Progress = Callable[[Iterable[Any]], Iterable[Any]]  # e.g. tqdm: called on the items as they finish


def no_progress(items: Iterable[Any]) -> Iterable[Any]:
    return items


class Runner(Protocol):
    where: str  # "local", or the Dask scheduler's address

    def map(self, fn: Callable[..., R], items: Sequence[T], progress: Progress = no_progress, **shared: Any) -> list[R]:
        """``[fn(item, **shared) for item in items]``; ``shared`` inputs are sent to each worker once."""
        ...


class LocalRunner:
    """A plain loop in this process: the default, and the reference the Dask runner must match."""

    where = "local"

    def map(self, fn: Callable[..., R], items: Sequence[T], progress: Progress = no_progress, **shared: Any) -> list[R]:
        return [fn(item, **shared) for item in progress(items)]


class _Completions:
    """Futures as they finish, with a length so a progress bar knows its total."""

    def __init__(self, futures: list[Any]) -> None:
        self.futures = futures

    def __len__(self) -> int:
        return len(self.futures)

    def __iter__(self) -> Iterator[Any]:
        from distributed import as_completed

        return iter(as_completed(self.futures))


def _apply(item: Any, fn: Callable[..., R], shared: dict[str, Any]) -> R:
    return fn(item, **shared)


class DaskRunner:
    """Tasks on a ``distributed`` cluster; results gathered back here in input order."""

    def __init__(self, client: Any, note: str = "") -> None:
        self.client = client
        self.where = f"dask {client.scheduler.address}{note}"

    def map(self, fn: Callable[..., R], items: Sequence[T], progress: Progress = no_progress, **shared: Any) -> list[R]:
        # big inputs (logs, matrices, models) travel once per worker, not once per task; the list
        # wrapper keeps scatter from splitting a dict or sequence into one future per element
        sent = {name: self.client.scatter([value], broadcast=True, hash=False)[0] for name, value in shared.items()}
        # through _apply, so a shared name (e.g. `priority`) never collides with client.map's own keywords
        futures = self.client.map(_apply, list(items), pure=False, fn=fn, shared=sent)
        for _ in progress(_Completions(futures)):
            pass
        return self.client.gather(futures)


@contextmanager
def open_runner(params: OrchestrationParams, connect_timeout: float = 15.0) -> Iterator[Runner]:
    """The runner ``params.runner`` names; a Dask client (and LocalCluster) is closed on exit."""
    if params.runner == "local":
        yield LocalRunner()
        return
    from distributed import Client, LocalCluster

    settings = params.dask
    cluster = None
    if settings.address is None:
        cluster = LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=settings.threads_per_worker,
            memory_limit=settings.memory_limit,
            processes=True,
            dashboard_address=None,
        )
    try:
        try:
            client = Client(cluster if cluster is not None else settings.address, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as error:
            raise ParamsError(
                f"orchestration.dask.address: no Dask scheduler reachable at {settings.address} "
                f"within {connect_timeout:g} s ({type(error).__name__})"
            ) from None
        try:
            client.wait_for_workers(1, timeout=connect_timeout)
        except TimeoutError:
            client.close()
            raise ParamsError(
                f"orchestration.dask.address: the Dask scheduler at {settings.address} has no workers"
            ) from None
        note = "" if cluster is None else f" (LocalCluster, {settings.n_workers} workers)"
        with client:
            yield DaskRunner(client, note)
    finally:
        if cluster is not None:
            cluster.close()
