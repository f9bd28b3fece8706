"""The pieces of the tools' self-contained HTML pages: style, escaping, tables.

Shared by the run report (local/report/run_report.py) and the monitoring report
(local/monitor/monitor_report.py), so both look alike. No script, no network: the
plots are inline SVG (local/html/svg_plots.py).
"""
import html
from typing import Iterable, Sequence

# A section that could not be read shows this class, so a test (or a reader)
# can tell a broken report from a complete one.
UNAVAILABLE_CLASS = 'unavailable'

STYLE = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1100px;
       color: #222; background: #fff; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #1f77b4;
     padding-bottom: .2em; margin-top: 2em; } h3 { margin-top: 1.4em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left;
         vertical-align: top; font-size: .9em; }
th { background: #eef3f8; } td.num { text-align: right; }
.blessed { color: #1a7f37; font-weight: bold; }
.not-blessed { color: #c62828; font-weight: bold; }
.pass { color: #1a7f37; } .fail { color: #c62828; font-weight: bold; }
.unavailable { color: #8a6d00; background: #fff8e1; padding: .4em; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
nav a { margin-right: 1em; } code { background: #f4f4f4; padding: 0 .2em; }
"""


def escape(text) -> str:
  return html.escape(str(text), quote=True)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]],
          numeric: Sequence[int] = ()) -> str:
  """An HTML table; cells are already-escaped HTML."""
  parts = ['<table><tr>'] + [f'<th>{escape(h)}</th>' for h in headers]
  parts.append('</tr>')
  for row in rows:
    parts.append('<tr>' + ''.join(
        f'<td class="num">{cell}</td>' if i in numeric else f'<td>{cell}</td>'
        for i, cell in enumerate(row)) + '</tr>')
  parts.append('</table>')
  return ''.join(parts)


def unavailable(what: str) -> str:
  return f'<p class="{UNAVAILABLE_CLASS}">{escape(what)}</p>'


def head(title: str) -> str:
  """The page's opening up to and including its <h1>."""
  return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
          f'<title>{escape(title)}</title><style>{STYLE}</style></head><body>'
          f'<h1>{escape(title)}</h1>')
