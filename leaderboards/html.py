"""One self-contained HTML page (inline CSS, JS and SVG plots; no CDN, works offline from a file:// URL).

The tables are plain server-rendered HTML, so the page reads fine without
JavaScript; the script only adds click-to-sort on every column header (numbers
numerically, empty cells last, stable) and marks ``<body data-ready="1">`` so a
headless-browser test can tell the script ran.
"""

from __future__ import annotations

import html
import json
import re

from .board import Board, Column, Row, Section
from .render import (
    DAGGER,
    UNSCORED,
    UNSCORED_LEGEND,
    WARN,
    _partial,
    any_mark,
    clean,
    fmt_cost,
    fmt_value,
    methods_text,
    run_details,
)

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;
 padding:0 1rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table.lb{border-collapse:collapse;width:100%;margin:.5rem 0}
table.lb th,table.lb td{border-bottom:1px solid #d8dee4;padding:.3rem .5rem;text-align:right;vertical-align:top}
table.lb th:first-child,table.lb td:first-child,table.lb th.text,table.lb td.text{text-align:left}
table.lb th{background:#f6f8fa;position:sticky;top:0}
table.lb th button{all:unset;cursor:pointer;font-weight:600}
table.lb th button:focus-visible{outline:2px solid #0969da}
table.lb th[aria-sort=ascending] button::after{content:" \\25B2"}
table.lb th[aria-sort=descending] button::after{content:" \\25BC"}
tr.published td{color:#57606a;background:#fbfbfc}
.badge{font-size:.75em;border-radius:.6em;padding:0 .45em;border:1px solid #d0d7de}
.badge.published{background:#eef1f4}.badge.measured{background:#dafbe1;border-color:#a4e1b2}
.ci{display:block;font-size:.78em;color:#57606a}
.warn{color:#9a6700;font-weight:600}
details summary{cursor:pointer}
details .det{font-size:.82em;color:#24292f;max-width:42rem;white-space:normal;text-align:left}
details pre{white-space:pre-wrap;font-size:.78em;background:#f6f8fa;padding:.4rem;max-height:22rem;overflow:auto}
ul.notes{font-size:.85em;color:#57606a}
.plots svg{max-width:100%;height:auto}
footer{margin-top:2rem;font-size:.85em;color:#57606a}
"""

JS = r"""
(function(){
  function key(td){
    if(!td) return null;
    var v = td.getAttribute('data-sort');
    if(v === null) v = td.textContent.trim();
    return v;
  }
  function sortTable(table, col, th){
    var tbody = table.tBodies[0];
    var type = th.getAttribute('data-type') || 'num';
    var cur = th.getAttribute('aria-sort');
    var dir = cur === 'descending' ? 'ascending' :
              (cur === 'ascending' ? 'descending' : (type === 'num' ? 'descending' : 'ascending'));
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(h){ h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
    var rows = Array.prototype.slice.call(tbody.rows).map(function(r, i){ return {r: r, i: i, k: key(r.cells[col])}; });
    var sign = dir === 'ascending' ? 1 : -1;
    rows.sort(function(a, b){
      var ea = a.k === null || a.k === '', eb = b.k === null || b.k === '';
      if(ea || eb) return ea === eb ? a.i - b.i : (ea ? 1 : -1);      /* empty cells last, either direction */
      var c;
      if(type === 'num'){ c = parseFloat(a.k) - parseFloat(b.k); }
      else { c = a.k.localeCompare(b.k); }
      return c !== 0 ? sign * c : a.i - b.i;                            /* stable */
    });
    rows.forEach(function(x){ tbody.appendChild(x.r); });
  }
  document.querySelectorAll('table.lb').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, col){
      var b = th.querySelector('button');
      if(b) b.addEventListener('click', function(){ sortTable(table, col, th); });
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
"""


def _e(s: object) -> str:
    return html.escape(str(s), quote=True)


def _cell_td(row: Row, col: Column) -> str:
    c = row.cells.get(col.key)
    if c is None or c.value is None:
        title = f"{col.label}: not measured" + (f" (only {c.coverage})" if c and c.coverage else "")
        return f'<td data-sort="" title="{_e(title)}">—</td>'
    parts = [f"{col.label} = {c.value:.4g}"]
    if c.ci:
        parts.append(f"95% CI {c.ci[0]:.{col.decimals}f}–{c.ci[1]:.{col.decimals}f} ({c.ci_method})")
    if c.n:
        parts.append(f"n = {c.n} scored items" + (f", {c.unscored} unscored" if c.unscored else ""))
    if c.pessimistic is not None:
        parts.append(f"pessimistic bound {c.pessimistic:.{col.decimals}f} (judge-unscored items counted as the "
                     "scale's minimum)")
    if c.coverage:
        parts.append(f"coverage: {c.coverage}")
    if c.tasks:
        parts.append("tasks: " + ", ".join(c.tasks))
    parts += c.notes
    body = _e(fmt_value(c.value, col.decimals))
    if _partial(c):
        body += f" {DAGGER}"
    if c.ci:
        body += f'<span class="ci">{c.ci[0]:.{col.decimals}f}–{c.ci[1]:.{col.decimals}f}</span>'
    return f'<td data-sort="{c.value!r}" title="{_e(chr(10).join(parts))}">{body}</td>'


def _label_td(row: Row) -> str:
    warn = f' <span class="warn" title="the judge is the evaluated model (self-judged)">{WARN}</span>' \
        if row.judge and row.judge.self_judged else ""
    if row.unscored_mark and row.section_judge:
        j = row.section_judge
        warn += (f' <span class="warn" title="{_e(j["unscored"])} of {_e(j["items"])} judged items unscored by the '
                 f'judge (over 2%)">{UNSCORED}</span>')
    if row.run is None:
        det = f'<div class="det">{_e("; ".join(row.notes))}</div>'
        hover = "published in the paper; " + "; ".join(row.notes)
    else:
        d = run_details(row.run, row.judge) if row.judge else {}
        info = [f"lm-eval model: {row.run.config.get('model', '')}", f"model_name: {row.run.model_name}",
                f"limit: {row.run.limit}", f"chat template: {'yes' if row.run.info.get('chat_template_sha') else 'no'}",
                f"lm-eval {row.run.info.get('lm_eval_version', '?')}"]
        hover = "\n".join(info)
        det = (f'<div class="det">{_e(" · ".join(info))}<pre>{_e(json.dumps(clean(d), indent=1, default=str))}'
               f'</pre></div>')
    return (f'<td class="text" data-sort="{_e(row.label)}" title="{_e(hover)}"><details><summary>{_e(row.label)}'
            f'{warn}</summary>{det}</details></td>')


def _judge_tds(row: Row) -> str:
    j = row.section_judge
    if j is None:
        return '<td class="text" data-sort="">—</td><td data-sort="">—</td><td data-sort="">—</td>'
    models = ", ".join(j["models"]) or "unknown"
    tmpl = ", ".join(f"{k}@{v}" if v else k for k, v in sorted(j["templates"].items())) or "not recorded"
    warn = f' <span class="warn">{WARN}</span>' if j["self_judged"] else ""
    rate = j["unscored_rate"]
    rate_txt = "—" if rate is None else f"{100 * rate:.1f}%"
    rate_title = "" if rate is None else f"{j['unscored']} of {j['items']} judged items unscored"
    if "tampered" in j:
        rate_title += f"; {j['tampered']} tampered (the evaluated text's doing: scored as the scale's minimum)"
    cost = j["cost_usd"]
    return (f'<td class="text" data-sort="{_e(models)}" title="templates: {_e(tmpl)}">{_e(models)}{warn}</td>'
            f'<td data-sort="{"" if rate is None else rate!r}" title="{_e(rate_title)}">{rate_txt}</td>'
            f'<td data-sort="{"" if cost is None else cost!r}">{_e(fmt_cost(cost))}</td>')


def _section_html(sec: Section) -> str:
    judged = any(r.section_judge for r in sec.rows)
    heads = ['<th class="text" data-type="text"><button>Model</button></th>',
             '<th class="text" data-type="text"><button>Source</button></th>']
    heads += [f'<th data-type="num" title="{_e(c.title)}"><button>{_e(c.label)}</button></th>' for c in sec.columns]
    if judged:
        heads += ['<th class="text" data-type="text" title="judge model(s) of this section\'s tasks; template versions '
                  'on hover"><button>Judge</button></th>',
                  '<th data-type="num" title="judged items without a parsable verdict"><button>Unscored</button></th>',
                  '<th data-type="num" title="judge cost in USD for this section\'s tasks"><button>Judge cost'
                  '</button></th>']
    rows = []
    for r in sec.rows:
        tds = [_label_td(r), f'<td class="text" data-sort="{r.source}"><span class="badge {r.source}">{r.source}'
                              f'</span></td>']
        tds += [_cell_td(r, c) for c in sec.columns]
        if judged:
            tds.append(_judge_tds(r))
        rows.append(f'<tr class="{r.source}" data-label="{_e(r.label)}">' + "".join(tds) + "</tr>")
    notes = "".join(f"<li>{_e(n)}</li>" for n in sec.notes)
    return (f'<section id="sec-{sec.key}"><h2>{_e(sec.title)}</h2><p>{_e(sec.description)}</p>'
            f'<table class="lb" id="tbl-{sec.key}"><thead><tr>{"".join(heads)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>'
            + (f'<ul class="notes">{notes}</ul>' if notes else "") + "</section>")


def _inline_svg(svg: str) -> str:
    """An SVG file's markup without its XML prolog/doctype, safe to inline."""
    svg = re.sub(r"<\?xml[^>]*\?>", "", svg)
    return re.sub(r"<!DOCTYPE[^>]*>", "", svg, flags=re.S).strip()


def to_html(board: Board, title: str = "Leaderboard", notes: list[str] | None = None,
            plots: dict[str, str] | None = None) -> str:
    """The page: one sortable table per section, judge columns, expandable model details, inline plots."""
    nav = " · ".join(f'<a href="#sec-{s.key}">{_e(s.title)}</a>' for s in board.sections)
    intro = "".join(f"<p>{_e(n)}</p>" for n in notes or [])
    body = "".join(_section_html(s) for s in board.sections)
    figs = ""
    if plots:
        figs = '<section class="plots" id="plots"><h2>Plots</h2>' + "".join(
            f"<figure><figcaption>{_e(name)}</figcaption>{_inline_svg(svg)}</figure>" for name, svg in plots.items()
        ) + "</section>"
    foot = (f"<footer><p>{_e(methods_text(board))}</p><p>{DAGGER}: only some of the column's datasets were run. "
            f"{WARN}: the judge is the evaluated model (self-judged). "
            + (f"{_e(UNSCORED_LEGEND)} " if any_mark(board) else "")
            + "Click a column header to sort; click a model to expand its details; hover a cell for its interval, "
            "item count and notes.</p></footer>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body data-ready=\"0\">"
            f"<h1>{_e(title)}</h1>{intro}<nav>{nav}</nav>{body}{figs}{foot}<script>{JS}</script></body></html>\n")
