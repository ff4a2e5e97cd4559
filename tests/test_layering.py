"""Layering of the code base, read from the import statements themselves (ast, no import executed):

    core (tasks, data, envs, paths, errors)  <-  agents  <-  harness (evaluate, trial, orchestrator, perf, ...)
    <-  bench.report  <-  bench.cli

A module may import its own layer and lower ones, never a higher one, at module level or inside a function:
a lazy import inside a function still ties the lower layer to the higher one (a core module that imports an
agent cannot be used, tested or reasoned about without the agents). Every module must have a layer here, so a
new module is placed on purpose.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "agents")

#: Longest matching prefix wins. Lower number = lower layer.
LAYERS: dict[str, int] = {
    "bench": 0,  # the package itself (its __init__ holds the version)
    "bench.errors": 0,
    "bench.tasks": 0,
    "bench.data": 0,
    "bench.paths": 0,
    "bench.envs": 0,
    "bench.legacy_gym": 0,
    "bench.overrides": 0,
    "bench.atomic": 0,
    "agents": 1,
    "bench.evaluate": 2,
    "bench.trial": 2,
    "bench.orchestrator": 2,
    "bench.perf": 2,
    "bench.results": 2,
    "bench.suites": 2,
    "bench.progress": 2,
    "bench.smoke_check": 2,
    "bench.deviations": 2,
    "bench.report": 3,
    "bench.cli": 4,
}
NAMES = {0: "core", 1: "agents", 2: "harness", 3: "report", 4: "cli"}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            # The bare package name "bench" only covers bench/__init__.py, not every bench.* module.
            if prefix == "bench" and module != "bench":
                return None
            return LAYERS[prefix]
    return None


@functools.cache
def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            parts = file.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return out


def imports_of(module: str, file: Path) -> list[tuple[str, int]]:
    """(imported module, line) for every import anywhere in the file, relative imports resolved."""
    package = module.split(".") if file.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((name, node.lineno))
            # `from bench import cli` imports the submodule bench.cli
            found += [
                (f"{name}.{alias.name}", node.lineno) for alias in node.names if f"{name}.{alias.name}" in modules()
            ]
    return [(name, line) for name, line in found if name.split(".")[0] in PACKAGES]


def test_every_module_has_a_layer() -> None:
    missing = [m for m in modules() if layer_of(m) is None]
    assert not missing, f"modules without a layer (add them to LAYERS in {Path(__file__).name}): {missing}"


def test_no_module_imports_a_higher_layer() -> None:
    violations = []
    for module, file in modules().items():
        mine = layer_of(module)
        assert mine is not None
        for target, line in imports_of(module, file):
            theirs = layer_of(target)
            if theirs is not None and theirs > mine:
                violations.append(f"{file.relative_to(ROOT)}:{line} ({NAMES[mine]}) imports {target} ({NAMES[theirs]})")
    assert not violations, "layering violations:\n" + "\n".join(violations)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("import bench.cli\n", "bench.cli"),
        ("def f():\n    from bench.report import build\n", "bench.report"),
        ("from ..cli import main\n", "bench.cli"),
    ],
)
def test_the_checker_sees_every_import_form(tmp_path: Path, source: str, expected: str) -> None:
    file = tmp_path / "probe.py"
    file.write_text(source)
    assert expected in [name for name, _ in imports_of("bench.data.probe", file)]
    assert (layer_of(expected) or 0) > (layer_of("bench.data.probe") or 0)
