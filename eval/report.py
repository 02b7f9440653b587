"""The self-contained HTML report of an `ra eval qa` run: one file, figures inlined, no external URL.

Figures are matplotlib PNGs embedded as base64 (`Figure` objects, not pyplot, so no global state or GUI
backend is touched); styles are inline. Every piece of text from the data or the model is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.metrics import METRICS

if TYPE_CHECKING:  # matplotlib loads on use: `ra --help` imports this module for its labels
    from matplotlib.figure import Figure

LABELS = {
    "keyword_hit": "keyword accuracy",
    "abstention_correct": "abstention correct",
    "judge_correct": "LLM-judge correct",
    "faithfulness": "faithfulness",
    "citation_recall": "citation recall",
    "citation_precision": "citation precision",
    "invalid_citations": "invalid citations / answer",
    "citations_resolve": "citations resolve to quotes",
    "evidence_recall": "evidence recall (agent)",
    "retrieval_recall": "retrieval recall@k",
    "abstention_accuracy": "abstention on unanswerable",
    "false_abstention_rate": "false abstention (answerable)",
    "n": "questions",
}
COUNTS = {"n", "invalid_citations"}  # shown as numbers, not percentages
CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.3em .6em;vertical-align:top}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:1em}.figs img{max-width:560px;border:1px solid #eee}
.ok{color:#17702b}.bad{color:#b3261e}.na{color:#888}.small{font-size:.85em;color:#555}
.supported{background:#e3f4e6}.weak{background:#fff4d6}.unsupported{background:#fbe3e1}
"""


def fmt(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name in COUNTS:
        return f"{value:g}" if isinstance(value, float) else str(value)
    return f"{100 * value:.1f}%"


def write_report(path: Path, rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> None:
    path.write_text(render_report(rows, summary), encoding="utf-8")


def render_report(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    config = summary.get("config", {})
    title = f"QA evaluation: {config.get('llm', '?')} on {Path(str(config.get('data', '?'))).name}"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>",
        "<h2>Summary</h2>",
        _summary_table(summary),
        "<h2>Figures</h2><div class='figs'>",
        *(_img(fig) for fig in _figures(rows, summary)),
        "</div><h2>Latency (s)</h2>",
        _kv_table(summary.get("latency", {}), lambda v: "–" if v is None else f"{v:.2f}"),
        "<h2>Questions</h2>",
        _questions_table(rows),
        "<h2>Configuration</h2>",
        _kv_table(config, lambda v: v if isinstance(v, str) else json.dumps(v)),
        "</body></html>",
    ]
    return "\n".join(parts)


# -- tables -------------------------------------------------------------------------------------------
def _summary_table(summary: Mapping[str, Any]) -> str:
    kinds = list(summary.get("by_kind", {}))
    names = [
        "n",
        *[m for m in METRICS if any(_has(summary, k, m) for k in [None, *kinds])],
        "abstention_accuracy",
        "false_abstention_rate",
    ]
    head = "<tr><th>metric</th><th>all</th>" + "".join(f"<th>{escape(k)}</th>" for k in kinds) + "</tr>"
    body = []
    for name in names:
        cells = [summary["metrics"].get(name), *(summary["by_kind"][k].get(name) for k in kinds)]
        tds = "".join(f"<td class='num'>{fmt(name, v)}</td>" for v in cells)
        body.append(f"<tr><th>{escape(LABELS.get(name, name))}</th>{tds}</tr>")
    return f"<table>{head}{''.join(body)}</table>"


def _has(summary: Mapping[str, Any], kind: str | None, name: str) -> bool:
    scope = summary["metrics"] if kind is None else summary["by_kind"][kind]
    return scope.get(name) is not None


def _kv_table(data: Mapping[str, Any], show: Any) -> str:
    rows = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(show(v))}</td></tr>" for k, v in data.items())
    return f"<table>{rows}</table>"


def _mark(value: Any) -> str:
    if value is None:
        return "<span class='na'>–</span>"
    return "<span class='ok'>✓</span>" if value else "<span class='bad'>✗</span>"


def _questions_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = (
        "<tr><th>id</th><th>kind</th><th>question</th><th>answer</th><th>keywords</th>"
        "<th>abstention</th><th>faithfulness</th><th>time (s)</th></tr>"
    )
    body = []
    for r in rows:
        m = r["metrics"]
        gold = f"<div class='small'>gold: {escape(r.get('gold_answer') or '')}</div>"
        body.append(
            f"<tr><td>{escape(str(r['id']))}</td><td>{escape(r['kind'])}</td>"
            f"<td>{escape(r['question'])}{gold}</td><td>{_answer_html(r)}</td>"
            f"<td>{_mark(m.get('keyword_hit'))}</td><td>{_mark(m.get('abstention_correct'))}</td>"
            f"<td class='num'>{fmt('faithfulness', m.get('faithfulness'))}</td>"
            f"<td class='num'>{r['timings'].get('total_s', 0):.1f}</td></tr>"
        )
    return f"<table>{head}{''.join(body)}</table>"


def _answer_html(r: Mapping[str, Any]) -> str:
    """Sentences with their markers, shaded by verdict, then the cited sources with their quotes."""
    if r["abstained"] or not r["sentences"]:
        return f"<i>{escape(r['answer'])}</i>"
    sentences = []
    for s in r["sentences"]:
        marks = "".join(f"[{n}]" for n in s["citations"])
        support = "" if s.get("support") is None else f" (support {s['support']:.2f})"
        css = escape(s.get("verdict") or "")
        sentences.append(f"<span class='{css}' title='{escape(support)}'>{escape(s['text'])} {marks}</span>")
    sources = []
    for c in r["citations"]:
        where = "python" if c["kind"] == "computed" else Path(c["source"]).name
        page = f" p.{c['page']}" if c.get("page") else ""
        sources.append(f"[{c['id']}] {escape(where + page)}: “{escape(c['quote'])}”")
    return " ".join(sentences) + "<div class='small'>" + "<br>".join(sources) + "</div>"


# -- figures ------------------------------------------------------------------------------------------
def _img(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f"<img alt='figure' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def _figures(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> list[Figure]:
    by_kind = summary.get("by_kind", {})
    figures = [
        _grouped_bars(
            "Accuracy per kind",
            by_kind,
            ["keyword_hit", "judge_correct", "abstention_correct"],
        ),
        _grouped_bars(
            "Faithfulness and citations per kind",
            by_kind,
            ["faithfulness", "citation_recall", "citation_precision"],
            empty="no checker ran",
        ),
    ]
    supports = [s["support"] for r in rows for s in r["sentences"] if s.get("support") is not None]
    figures.append(
        _histogram(
            "Sentence support scores", {"support": supports}, "checker score", (0, 1), "no checker ran"
        )
    )
    latency = {
        "first token": [r["timings"]["first_token_s"] for r in rows if r["timings"].get("first_token_s")],
        "total": [r["timings"]["total_s"] for r in rows if r["timings"].get("total_s") is not None],
    }
    figures.append(_histogram("Latency per question", latency, "seconds", None, "no timings"))
    return figures


def _grouped_bars(
    title: str, by_kind: Mapping[str, Mapping[str, Any]], names: list[str], empty: str = "no values"
) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    kinds = list(by_kind)
    shown = [n for n in names if any(by_kind[k].get(n) is not None for k in kinds)]
    width = 0.8 / max(len(shown), 1)
    for i, name in enumerate(shown):
        values = [100 * (by_kind[k].get(name) or 0.0) for k in kinds]
        ax.bar([x + i * width for x in range(len(kinds))], values, width, label=LABELS[name])
    ax.set_xticks([x + width * (len(shown) - 1) / 2 for x in range(len(kinds))], kinds, rotation=20)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(title)
    if shown:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    return fig


def _histogram(
    title: str,
    series: Mapping[str, list[float]],
    xlabel: str,
    value_range: tuple[float, float] | None,
    empty: str,
) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.4))
    ax = fig.subplots()
    drawn = False
    for name, values in series.items():
        if values:
            ax.hist(values, bins=20, range=value_range, alpha=0.6, label=name)
            drawn = True
    if drawn:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.set_title(title)
    return fig
