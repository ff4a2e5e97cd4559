"""The `bench` command line. Each subcommand is a thin layer over a library function.

Heavy imports (torch, ray, d3rlpy) happen inside the commands that need them, so `bench --help` and
`bench tasks` answer instantly. A `BenchError` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bench.errors import BenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="lamo-bench: LaMo vs Decision Transformer, CQL and BC on offline RL tasks.")
data_app = typer.Typer(no_args_is_help=True, help="Inspect and build datasets.")
app.add_typer(data_app, name="data")

# Wide enough for the task table when stdout is a pipe or a CI log (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 200)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of a table.")]


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _fmt_ratio(r: float) -> str:
    return f"{r:g}"


@app.command("tasks")
def tasks_cmd(as_json: JsonFlag = False) -> None:
    """List every benchmark task with its environment, data sources, normalization and paper settings."""
    from bench.tasks import TASKS

    if as_json:
        _print_json([t.to_dict() for t in TASKS.values()])
        return
    table = Table(title="lamo-bench tasks", show_lines=False)
    for col in ("task", "reward", "env", "sources", "random/expert", "K", "RTG targets", "ratios", "lr/wd",
                "steps"):
        table.add_column(col)
    for t in TASKS.values():
        table.add_row(
            t.name, t.reward_type, t.env_id, "\n".join(str(s) for s in t.sources),
            f"{t.random_score:g} / {t.expert_score:g}", str(t.context_length),
            ", ".join(f"{x:g}" for x in t.rtg_targets), ", ".join(_fmt_ratio(r) for r in t.sample_ratios),
            f"{t.paper.learning_rate:g} / {t.paper.weight_decay:g}", f"{t.paper.train_steps // 1000}K",
        )
    console.print(table)


@data_app.command("info")
def data_info_cmd(
    task: Annotated[str, typer.Argument(help="Task name (see `bench tasks`).")],
    source: Annotated[str | None, typer.Option(help="Data source kind or kind:id; default: first present.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Size, episodes, return statistics (raw and normalized) and content hash of a task's dataset."""
    from bench.data.info import dataset_summary
    from bench.data.loaders import load_task_dataset
    from bench.tasks import get_task

    t = get_task(task)
    summary = dataset_summary(t, load_task_dataset(t, source))
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"{t.name} ({summary['source']})", show_header=False)
    table.add_column("field")
    table.add_column("value")
    for key, value in summary.items():
        if isinstance(value, dict):
            value = "  ".join(f"{k} {v:.2f}" for k, v in value.items())
        table.add_row(key, str(value))
    console.print(table)


def main() -> None:
    """Console entry point: run the app, turning user errors into one line and exit code 2."""
    try:
        app(standalone_mode=False)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(2)
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
