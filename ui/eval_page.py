"""The evaluation page: run `ra eval qa` on a QA file or load a result, then its plots and per-question table."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from assistant.settings import Settings
from ui import session_settings
from ui.eval_results import (
    RATE_METRICS,
    RESULTS,
    EvalJob,
    EvalResult,
    ResultError,
    by_kind,
    find_results,
    load_result,
    metric_info,
    question_table,
    start_eval,
    summary_table,
)

_JOB, _SHOWN, _FAILED = "eval.job", "eval.shown", "eval.failed"


def eval_root(settings: Settings) -> Path:
    """Where runs started here write: beside the index folder (`.ra/eval/` for the default `.ra/index`)."""
    return Path(settings.index.dir).resolve().parent / "eval"


def default_qa_file() -> str:
    shared = Path(os.environ.get("RA_SHARED_DIR", "../shared")) / "qa" / "seeds_dev.jsonl"
    return str(shared) if shared.is_file() else ""


def render() -> None:
    settings = session_settings.current()
    st.title("Evaluation")
    st.caption(
        "How far the answers can be trusted on a QA file: keyword accuracy, abstention, faithfulness, "
        "citation precision and recall, latency. Runs use the settings in the sidebar."
    )
    run_tab, load_tab = st.tabs(
        [":material/play_arrow: Run an evaluation", ":material/folder_open: Load a result"]
    )
    with run_tab:
        run_panel(settings)
    with load_tab:
        load_panel(settings)
    shown = st.session_state.get(_SHOWN)
    if shown:
        try:
            show_result(load_result(Path(shown)))
        except ResultError as exc:
            st.error(str(exc), icon=":material/error:")


def run_panel(settings: Settings) -> None:
    job: EvalJob | None = st.session_state.get(_JOB)
    if job is not None:
        follow_job()
        return
    if failed := st.session_state.pop(_FAILED, None):
        st.error(failed, icon=":material/error:")
    with st.form("eval-run", border=False):
        data = st.text_input(
            "QA file (JSON Lines)", value=default_qa_file(), placeholder="qa/questions.jsonl"
        )
        out = st.text_input(
            "Output folder", value=str(eval_root(settings) / time.strftime("qa-%Y%m%d-%H%M%S"))
        )
        limit = st.number_input(
            "Questions", min_value=0, value=0, help="Only the first N questions; 0 runs all."
        )
        started = st.form_submit_button("Run evaluation", type="primary")
    if started:
        try:
            st.session_state[_JOB] = start_eval(
                Path(data.strip()), Path(out.strip()), settings, int(limit) or None
            )
        except ResultError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            st.rerun()


@st.fragment(run_every=2)
def follow_job() -> None:
    """Progress of the running evaluation, refreshed every 2 s without rerunning the page."""
    job: EvalJob | None = st.session_state.get(_JOB)
    if job is None:
        return
    done, code = job.done, job.returncode
    elapsed = time.time() - job.started
    st.progress(min(done / max(job.total, 1), 1.0), text=f"{done}/{job.total} questions · {elapsed:.0f} s")
    st.caption(f"`{job.data}` → `{job.out}`")
    if code is None:
        if st.button("Stop", icon=":material/stop:"):
            job.stop()
        return
    del st.session_state[_JOB]
    if code == 0:
        st.session_state[_SHOWN] = str(job.out)
    else:
        st.session_state[_FAILED] = f"`ra eval qa` exited with code {code}:\n\n```\n{job.log_tail()}\n```"
    st.rerun(scope="app")


def load_panel(settings: Settings) -> None:
    found = [str(p) for p in find_results(eval_root(settings))]
    with st.form("eval-load", border=False):
        picked = st.selectbox(
            "Earlier runs", found, index=None, placeholder="none found" if not found else "choose"
        )
        typed = st.text_input("…or a result folder (the --out of `ra eval qa`)")
        loaded = st.form_submit_button("Load")
    if loaded:
        choice = typed.strip() or picked
        if not choice:
            st.warning("Choose an earlier run or type a folder.")
        elif not (Path(choice) / RESULTS).is_file():
            st.error(
                f"No results.jsonl in {choice}: pick the --out folder of an `ra eval qa` run.",
                icon=":material/error:",
            )
        else:
            st.session_state[_SHOWN] = choice


def show_result(result: EvalResult) -> None:
    table = question_table(result.rows)
    st.divider()
    st.header(f"Result: {result.dir.name}")
    status = "complete" if result.summary else "partial (still running or stopped)"
    st.caption(f"`{result.dir}` · {len(table)} questions · {status}")
    if table.empty:
        st.info("No question has finished yet.")
        return
    st.subheader("Overall")
    st.table(summary_table(result, table), hide_index=True)

    kinds = by_kind(result, table)
    plotted = [m for m in RATE_METRICS if m in table and table[m].notna().any()]
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("By kind of question")
        if plotted and not kinds.empty:
            metric = st.selectbox("Metric", plotted, format_func=_label, key="eval.metric")
            if metric in kinds:
                st.bar_chart(kinds[[metric]], horizontal=True, y_label="", x_label=_label(metric))
        st.dataframe(kinds, width="stretch")
    with right:
        st.subheader("Time per question")
        timed = table.dropna(subset=["total_s"])
        if timed.empty:
            st.caption("No timings recorded.")
        else:
            st.bar_chart(timed, x="id", y="total_s", color="kind", y_label="seconds", x_label="question")

    st.subheader("Per question")
    st.dataframe(
        table,
        width="stretch",
        hide_index=True,
        column_config={
            **{
                m: st.column_config.ProgressColumn(_label(m), min_value=0.0, max_value=1.0, format="%.2f")
                for m in RATE_METRICS
            },
            "question": st.column_config.TextColumn(width="large"),
            "answer": st.column_config.TextColumn(width="large"),
        },
    )
    inspect(result, table)
    if result.report:
        st.download_button(
            "Download the HTML report",
            result.report.read_bytes(),
            file_name="report.html",
            mime="text/html",
            icon=":material/download:",
        )


def inspect(result: EvalResult, table: pd.DataFrame) -> None:
    """One question in full: gold answer, the answer sentence by sentence with verdicts, the error."""
    with st.expander("Inspect a question"):
        ids = list(table["id"])
        picked = st.selectbox(
            "Question", ids, format_func=lambda i: f"{i}: {table.set_index('id').at[i, 'question']}"
        )
        row = next(r for r in result.rows if str(r.get("id", "")) == picked)
        st.markdown(f"**Gold answer:** {row.get('gold_answer') or '–'}")
        for s in row.get("sentences") or []:
            cites = "".join(f"[{n}]" for n in s.get("citations", []))
            verdict = f" · _{s['verdict']}_" if s.get("verdict") else ""
            st.markdown(f"- {s.get('text', '')} {cites}{verdict}")
        if not row.get("sentences"):
            st.markdown(f"**Answer:** {row.get('answer') or '–'}")


def _label(name: str) -> str:
    return metric_info(name).label
