"""User errors end as one line on stderr and exit code 2, through the real entry point; overrides are typed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

from bench.errors import BenchError
from bench.overrides import CliText, check_overrides, check_value, parse_pairs

REPO = Path(__file__).resolve().parents[1]


def _bench(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LAMO_BENCH_RESULTS": str(tmp_path / "results"),
        "LAMO_BENCH_DATA": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "bench.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def _assert_one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# One subprocess per row: each is a parser error the old CLI answered with a traceback and exit code 1.
PARSER_ERRORS = [
    ((), ["missing command", "accepted: data, eval, lm, perf, report, run, tasks, train", "bench --help"]),
    (("data",), ["missing command", "accepted: build, build-missing, info", "bench data --help"]),
    (("data", "build-missing", "nope"), ["unknown suite 'nope'", "dense-mujoco"]),
    (("data", "build-missing", "sparse", "--workers", "0"), ["--workers 0 is not accepted; use 1 or more"]),
    (("frobnicate",), ["No such command 'frobnicate'", "Usage: bench"]),
    (("run", "--bogus"), ["No such option: --bogus", "bench run --help"]),
    (("train",), ["Missing argument 'agent'", "Usage: bench train"]),
    (("train", "dt", "reacher2d-medium", "--ratio", "abc"), ["'--ratio'", "valid number"]),
    (("train", "dt", "reacher2d-medium", "--steps", "abc"), ["'--steps'", "valid integer"]),
    (("train", "dt", "reacher2d-medium", "--steps"), ["--steps", "requires an argument"]),
]


@pytest.mark.parametrize(("args", "needles"), PARSER_ERRORS, ids=[" ".join(a) or "no-args" for a, _ in PARSER_ERRORS])
def test_parser_errors_are_one_line_with_usage_and_exit_2(
    args: tuple[str, ...], needles: list[str], tmp_path: Path
) -> None:
    _assert_one_line_error(_bench(*args, tmp_path=tmp_path), *needles)


def test_help_still_exits_0(tmp_path: Path) -> None:
    out = _bench("--help", tmp_path=tmp_path)
    assert out.returncode == 0 and "train" in out.stdout and not out.stderr.strip()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("train", "dt", "reacher2d-medium", "--seed", "-1"), ["--seed -1", ">= 0"]),
        (("run", "--seeds", "0,-2", "--dry-run"), ["--seeds -2", ">= 0"]),
        (("run", "--max-concurrent", "0", "--dry-run"), ["--max-concurrent 0", "1 or more"]),
    ],
)
def test_bad_numbers_are_refused_up_front(args: tuple[str, ...], needles: list[str], tmp_path: Path) -> None:
    _assert_one_line_error(_bench(*args, tmp_path=tmp_path), *needles)


def _main(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    """`bench.cli.main` in this process (torch is imported once for all cases); returns its one error line."""
    from bench.cli import main

    monkeypatch.setenv("LAMO_BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("LAMO_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "argv", ["bench", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("train", "dt", "reacher2d-medium", "--set", "batch_size=abc"), ["DTConfig.batch_size = abc", "an integer"]),
        (("train", "dt", "reacher2d-medium", "--set", "batch_size=2.5"), ["DTConfig.batch_size = 2.5", "an integer"]),
        (
            ("train", "dt", "reacher2d-medium", "--set", "learning_rate=fast"),
            ["DTConfig.learning_rate = fast", "a finite number"],
        ),
        (("train", "dt", "reacher2d-medium", "--set", "eval_mode=fast"), ["eval_mode = fast", "'window', 'cached'"]),
        (("train", "cql", "reacher2d-medium", "--set", "hidden_units=a,b"), ["hidden_units = a,b", "list of integers"]),
        (("train", "lamo", "reacher2d-medium", "--set", "lm_layers=two"), ["lm_layers = two", "an integer or none"]),
        (("train", "dt", "reacher2d-medium", "--set", "nope=1"), ["unknown DTConfig field(s) nope", "batch_size"]),
        (("train", "dt", "reacher2d-medium", "--set", "batch_size"), ["--set 'batch_size' is not key=value"]),
        (
            ("data", "build", "hopper-medium", "--set", "sac_batch_size=2.5"),
            ["budget override sac_batch_size = 2.5", "an integer"],
        ),
        (("data", "build", "hopper-medium", "--seed", "-3"), ["--seed -3", ">= 0"]),
    ],
)
def test_bad_overrides_are_refused_before_anything_runs(
    args: tuple[str, ...],
    needles: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line = _main(list(args), tmp_path, capsys, monkeypatch)
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()  # nothing written


def test_report_on_a_file_says_it_is_not_a_folder(tmp_path: Path) -> None:
    f = tmp_path / "final.parquet"
    f.write_bytes(b"")
    _assert_one_line_error(_bench("report", str(f), tmp_path=tmp_path), str(f), "is a file, not a folder")
    _assert_one_line_error(_bench("report", str(tmp_path / "gone"), tmp_path=tmp_path), "does not exist")


# --- the type checker itself (no subprocess) ---------------------------------------------------------------


def test_cli_text_is_parsed_by_the_field_type() -> None:
    assert check_value(CliText("64"), int, "x") == 64
    assert check_value(CliText("1e6"), int, "x") == 1_000_000  # an integral float spells an integer
    assert check_value(CliText("3"), float, "x") == 3.0 and isinstance(check_value(CliText("3"), float, "x"), float)
    assert check_value(CliText("true"), bool, "x") is True
    assert check_value(CliText("123"), str, "x") == "123"  # a string field keeps digits as text
    assert check_value(CliText("64,64"), tuple[int, ...], "x") == (64, 64)
    assert check_value(CliText("[32, 16]"), tuple[int, ...], "x") == (32, 16)
    assert check_value(CliText("none"), int | None, "x") is None
    assert check_value(CliText("4"), int | None, "x") == 4
    assert check_value(CliText("cached"), Literal["window", "cached"], "x") == "cached"
    for text, annotation in [
        ("abc", int),
        ("2.5", int),
        ("fast", float),
        ("nan", float),
        ("yes", bool),
        ("a,b", tuple[int, ...]),
        ("x", int | None),
        ("slow", Literal["window", "cached"]),
    ]:
        with pytest.raises(BenchError, match=f"F.f = {text} has the wrong type; expected"):
            check_value(CliText(text), annotation, "F.f")


def test_typed_values_from_toml_must_already_match() -> None:
    assert check_value([64, 64], tuple[int, ...], "x") == (64, 64)
    assert check_value(2, float, "x") == 2.0  # an integer for a float field is fine
    assert check_value((1.0, 2), tuple[float, float], "x") == (1.0, 2.0)
    bad: list[tuple[Any, Any]] = [
        ("8", int),
        (True, int),
        (1.5, int),
        ("1e-4", float),
        (1, bool),
        ("a", tuple[int, ...]),
        ([1, 2, 3], tuple[float, float]),
        (1, str),
        ("x", int | None),
    ]
    for value, annotation in bad:
        with pytest.raises(BenchError, match="wrong type"):
            check_value(value, annotation, "field")


def test_agent_config_overrides_are_type_checked() -> None:
    from agents.d3rlpy_configs import CQLConfig
    from agents.dt import DTConfig

    c = DTConfig().with_overrides({"batch_size": CliText("16"), "learning_rate": 1, "eval_mode": "cached"})
    assert (c.batch_size, c.learning_rate, c.eval_mode) == (16, 1.0, "cached")
    assert isinstance(c.learning_rate, float)
    assert CQLConfig().with_overrides({"hidden_units": [32, 32]}).hidden_units == (32, 32)
    with pytest.raises(BenchError, match=r"DTConfig.batch_size = 'abc' has the wrong type; expected an integer"):
        DTConfig().with_overrides({"batch_size": "abc"})
    with pytest.raises(BenchError, match=r"DTConfig.batch_size = 2.5 has the wrong type"):
        DTConfig().with_overrides({"batch_size": 2.5})
    with pytest.raises(BenchError, match="unknown DTConfig field"):
        DTConfig().with_overrides({"batch": 1})
    with pytest.raises(BenchError, match=r"\[x\] hidden_units = \['a'\] has the wrong type"):
        check_overrides(CQLConfig, {"hidden_units": ["a"]}, "[x]")


def test_parse_pairs() -> None:
    assert parse_pairs(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(BenchError, match="is not key=value"):
        parse_pairs(["=3"])
