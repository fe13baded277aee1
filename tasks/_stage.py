"""How every stage module exits: a user error is one line on stderr and exit code 2 (never retried)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from recause.errors import RecauseError


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main; a RecauseError becomes one line on stderr and exit code 2 (not retried)."""
    try:
        main()
    except RecauseError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
