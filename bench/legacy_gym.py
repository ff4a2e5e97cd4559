"""Silence the legacy-gym banner that d3rlpy's import prints on every `bench train` / `bench run`.

d3rlpy 2.x imports the unmaintained `gym` package (d3rlpy/types.py, d3rlpy/envs/wrappers.py); gym 0.26.2's
`__init__` prints the `gym_notices` notice for its version ("Gym has been unmaintained since 2022 ...") to
stderr, with no environment variable to turn it off. This project never runs `gym` environments (evaluation
uses gymnasium, bench/envs/factory.py), so the notice is noise. `quiet_legacy_gym` imports `gym` once with
stderr captured and passes through anything that is not that notice, so a real error message still shows.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import sys

NOTICE_START = "Gym has been unmaintained"


def quiet_legacy_gym() -> None:
    """Import `gym` (if installed and not yet imported) without its banner; call before importing d3rlpy."""
    if "gym" in sys.modules or importlib.util.find_spec("gym") is None:
        return
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        importlib.import_module("gym")
    text = captured.getvalue()
    if text and not text.lstrip().startswith(NOTICE_START):
        sys.stderr.write(text)
