"""Where training runs: device choice, autocast precision, and which failures are out-of-memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

from recause.config.language import EncoderParams
from recause.errors import ParamsError


def resolve_device(spec: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA on a machine without it is an error."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"encoder.device is '{spec}' but this machine has no CUDA device (use 'auto' or 'cpu')")
    return device


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The reduced precision to autocast to on CUDA (None: full fp32, always on CPU)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def is_out_of_memory(error: BaseException) -> bool:
    """CUDA out-of-memory (the one failure a smaller micro-batch can fix)."""
    return isinstance(error, torch.OutOfMemoryError) or "CUDA out of memory" in str(error)


def set_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(threads)


def runtime(encoder: EncoderParams, log: Callable[[str], None] = print) -> tuple[torch.device, torch.dtype | None]:
    """Apply the encoder's thread count; its device and autocast dtype (logged, so a run says where it ran)."""
    set_threads(encoder.threads)
    device = resolve_device(encoder.device)
    dtype = autocast_dtype(device, encoder.precision)
    log(f"device: {device}{'' if dtype is None else f' (autocast {dtype})'}, threads {torch.get_num_threads()}")
    return device, dtype
