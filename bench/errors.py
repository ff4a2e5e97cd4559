"""User-facing errors.

Anything a user can get wrong (a task name, a ratio, a missing or corrupt file) raises `BenchError` with one
line that names the bad value and what would be accepted. The CLI prints that line and exits with code 2;
no stack trace, and nothing is written.
"""


class BenchError(Exception):
    """An error caused by user input or missing data, reported as one line with exit code 2."""


class RunInterrupted(BaseException):
    """A `bench run` stopped by SIGTERM or SIGINT after merging what finished; the CLI prints `message` and
    exits with 128 + the signal number (143 for SIGTERM, 130 for SIGINT), as shells and schedulers expect.

    A BaseException, like KeyboardInterrupt, so `except Exception` handlers (Ray Tune's loop among them)
    let it through."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(message or f"interrupted by signal {signum}")
        self.signum = signum
        self.message = message or f"interrupted by signal {signum}"
