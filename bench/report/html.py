"""The report's `index.html`: every table and figure on one page that works offline.

No scripts and no external stylesheets: the page is a single file with inline CSS, tables embedded as
HTML, and figures linked by paths relative to the page, so the report folder can be zipped, copied or
opened from a file browser as is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from bench.report.render import Table, to_html

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table.scores { border-collapse: collapse; margin: 1em 0 .3em; font-size: 0.9em; }
table.scores caption { caption-side: bottom; text-align: left; font-size: .85em; color: #555; padding-top: .4em;
                       max-width: 1100px; }
table.scores th, table.scores td { border-bottom: 1px solid #ddd; padding: .25em .6em; text-align: right; }
table.scores th:nth-child(-n+3), table.scores td:nth-child(-n+3) { text-align: left; }
table.scores thead th { border-bottom: 2px solid #444; }
table.scores tr.rule td { border-top: 2px solid #888; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
.notes { background: #fff8e1; border-left: 4px solid #f0b400; padding: .5em 1em; font-size: .9em; }
.links { font-size: .85em; }
code { background: #f3f3f3; padding: 0 .2em; }
"""


@dataclass
class TableEntry:
    table: Table
    links: dict[str, str]  # format -> path relative to index.html


@dataclass
class FigureEntry:
    title: str
    png: str
    pdf: str
    caption: str = ""


@dataclass
class Section:
    profile: str
    runs: list[str]
    n_trials: int
    n_failed: int
    notes: list[str] = field(default_factory=list)
    tables: list[TableEntry] = field(default_factory=list)
    figures: list[FigureEntry] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # (label, relative path)


def _links(links: dict[str, str]) -> str:
    items = " · ".join(f'<a href="{html.escape(p)}">{html.escape(fmt)}</a>' for fmt, p in links.items())
    return f'<p class="links">Download: {items}</p>' if items else ""


def render_index(title: str, sections: list[Section]) -> str:
    """The whole page; one section per profile, never mixing profiles."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if len(sections) > 1:
        parts.append(
            "<p>The runs hold several profiles; each has its own section and nothing is mixed across them:</p><ul>"
        )
        parts += [f'<li><a href="#profile-{esc(s.profile)}">profile {esc(s.profile)}</a></li>' for s in sections]
        parts.append("</ul>")
    for s in sections:
        parts.append(f'<h2 id="profile-{esc(s.profile)}">Profile: {esc(s.profile)}</h2>')
        parts.append(
            f"<p>Runs: {', '.join(f'<code>{esc(r)}</code>' for r in s.runs)}. Trials: {s.n_trials} "
            f"({s.n_failed} failed).</p>"
        )
        if s.notes:
            parts.append(
                '<div class="notes"><b>Notes</b><ul>' + "".join(f"<li>{esc(n)}</li>" for n in s.notes) + "</ul></div>"
            )
        parts.append("<h3>Tables</h3>")
        for t in s.tables:
            parts.append(to_html(t.table))
            parts.append(_links(t.links))
        parts.append("<h3>Figures</h3>")
        for f in s.figures:
            parts.append(
                f'<figure><a href="{esc(f.pdf)}"><img src="{esc(f.png)}" alt="{esc(f.title)}"></a>'
                f"<figcaption><b>{esc(f.title)}.</b> {esc(f.caption)} "
                f'(<a href="{esc(f.pdf)}">PDF</a>)</figcaption></figure>'
            )
        if s.files:
            parts.append("<h3>Data files</h3><ul>")
            parts += [f'<li><a href="{esc(p)}">{esc(label)}</a></li>' for label, p in s.files]
            parts.append("</ul>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
