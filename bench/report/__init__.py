"""Reports over finished runs: paper-style tables, figures, rliable aggregates and an offline index page.

Modules, each with one job: `load` (read runs, split by profile), `stats` (per-cell numbers over seeds),
`tables` (paper-style tables), `render` (Markdown / LaTeX / HTML text), `paper` (published scores),
`robust` (rliable aggregates), `figures` (matplotlib), `html` (index page), `build` (puts it together).
"""

from bench.report.build import build_report

__all__ = ["build_report"]
