"""User-facing errors.

Anything a user can get wrong (a task name, a ratio, a missing or corrupt file) raises `BenchError` with one
line that names the bad value and what would be accepted. The CLI prints that line and exits with code 2;
no stack trace, and nothing is written.
"""


class BenchError(Exception):
    """An error caused by user input or missing data, reported as one line with exit code 2."""
