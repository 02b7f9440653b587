"""The Streamlit app through `AppTest`: a cited answer (scripted model, real index), settings that persist and
apply, upload + ingest into a temporary index, the error states, and the evaluation page on a result folder.

The model is the only fake: `ui.resources.open_backend` is replaced by a backend that answers each kind of
request the agent makes (part answer, rewrite, research step) from its JSON schema, which it enforces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from fakes import RuleBackend, by_schema
from streamlit.testing.v1 import AppTest

from assistant.agent.records import ABSTAIN_MESSAGE, Answer, Citation, Evidence, Part, Plan, Sentence, Step
from assistant.index_access import index_config
from assistant.settings import load_settings
from index.documents import DocumentMeta
from index.errors import UserFacingError
from index.ingest import ingest_paths
from ui import chat_view, resources
from ui.agent_run import Turn
from ui.chat_view import step_line
from ui.citations_html import answer_html, citation_numbers, sources_html, streaming_html
from ui.export import conversation_markdown

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
QUESTION = "How many instruction-following demonstrations was Alpaca 7B fine-tuned on?"
DOCS = {
    "alpaca.md": "# Alpaca\n\nAlpaca is a small model. Stanford's Alpaca 7B was fine-tuned on 52K "
    "instruction-following demonstrations. It cost little to train.\n",
    "glide.md": "# GLIDE\n\nGLIDE compares two guidance strategies. Human evaluators preferred classifier-free "
    "guidance for photorealism. CLIP guidance was preferred less often.\n",
    "diffusion.md": "# Diffusion\n\nDiffusion models denoise step by step. Sampling takes many network "
    "evaluations. Distillation reduces the number of steps.\n",
}


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three short documents ingested with the real embedder (the only model these tests load)."""
    docs = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    index_dir = tmp_path_factory.mktemp("ui") / "index"
    ingest_paths([docs], index_dir, index_config(load_settings({"index": {"dir": index_dir}})))
    return index_dir


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> RuleBackend:
    backend = RuleBackend(by_schema("Alpaca 7B was fine-tuned on 52K demonstrations.", QUESTION))

    @contextmanager
    def scripted(settings: object) -> Iterator[RuleBackend]:
        yield backend

    monkeypatch.setattr(resources, "open_backend", scripted)
    return backend


def app(index_dir: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> AppTest:
    monkeypatch.setenv("RA_INDEX__DIR", str(index_dir))
    monkeypatch.setenv("RA_GROUNDING__CHECKER", "none")  # badges are tested on their own below
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return AppTest.from_file(str(APP), default_timeout=60).run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def html_with(at: AppTest, css_class: str) -> list[str]:
    return [h.value for h in at.html if f'class="{css_class}"' in h.value]


def button(at: AppTest, label: str) -> Any:
    return next(b for b in at.button if b.label == label)


# -- asking ------------------------------------------------------------------------------------------------
def test_a_question_gets_a_streamed_answer_whose_citation_opens_its_highlighted_passage(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    at = ask(app(tiny_index, monkeypatch), QUESTION)

    [answer] = html_with(at, "ra-answer")
    assert "Alpaca 7B was fine-tuned on 52K demonstrations." in answer
    [sources] = html_with(at, "ra-sources")
    marker = answer.split('class="ra-cite" href="#', 1)[1].split('"', 1)[0]
    assert f'id="{marker}"' in sources  # the [n] marker links to its source card
    card = sources.split(f'id="{marker}"', 1)[1]
    assert "alpaca.md" in card.split("</a>", 1)[0]  # the path is the card's tooltip
    assert 'class="ra-doc">Alpaca, line 3</span>' in card  # the name is the document's title, with its line
    highlighted = card.split('<mark class="ra-hl">', 1)[1].split("</mark>", 1)[0]
    assert "52K" in highlighted  # the quoted span is marked inside the passage
    [status] = at.status
    assert status.label == "Research: 4 steps"  # plan, search, answer, check; no second clock
    [turn] = at.session_state["chat.conversation"].turns
    [answered] = [c.value for c in at.caption if c.value.startswith("Answered in")]
    assert answered.startswith(f"Answered in {turn.seconds:.1f} s")  # the turn's one clock
    assert model.calls  # the scripted model, not a real one, answered
    assert at.chat_input[0].disabled is False  # ready for the next question


def test_the_steps_panel_names_each_action_and_what_it_acted_on_never_the_prompt(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    at = ask(app(tiny_index, monkeypatch), QUESTION)
    lines = [m.value for m in at.status[0].markdown]
    [turn] = at.session_state["chat.conversation"].turns
    assert [s.action for s in turn.steps] == ["plan", "search", "answer", "check"]
    prompts = [" ".join(s.input.split()) for s in turn.steps if s.action in ("plan", "answer", "check")]
    # what a model step's `input` holds (its prompt's tail) is never shown; the question alone may be
    assert all(p[:40] not in line for p in prompts for line in lines)
    assert not any(word in line for word in ("Question:", "Reply", "[1]") for line in lines)
    search = next(s for s in turn.steps if s.action == "search")
    assert any(f"search** `{search.input}`" in line for line in lines)  # the query searched
    answer_line = next(line for line in lines if "answer**" in line)
    assert "writing a part of the answer" in answer_line and "Alpaca 7B fine-tuned" in answer_line


def test_a_model_steps_line_shows_its_part_not_its_prompt_and_a_read_names_its_passage() -> None:
    part = Part(1, "How many demonstrations was Alpaca 7B fine-tuned on?")
    turn = Turn(part.question, plan=Plan(part.question, (part,)), found=[_answer().citations[0].evidence])
    prompt = 'Lines:\n[1] Alpaca was fine-tuned on 52K demonstrations.\nReply with JSON: {"text": "...", "citations"'
    answer = Step(3, "", "answer", prompt[-200:], part=1, model_s=2.5)
    line = step_line(answer, turn)
    assert line.startswith("**3. :material/edit_note: answer**") and line.endswith("model 2.5 s")
    assert "How many demonstrations was Alpaca 7B fine-tuned on?" in line
    assert "JSON" not in line and "Lines" not in line
    read = step_line(Step(4, "", "read", "1", "the passage text", part=1, tool_s=0.2), turn)
    assert "around a passage of alpaca.pdf p.2" in read and "tool 0.2 s" in read


def test_only_a_question_that_starts_the_model_says_so(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    settings = load_settings({"index": {"dir": tiny_index}})
    assert not resources.backend_started(settings)
    at = ask(app(tiny_index, monkeypatch), QUESTION)
    assert resources.backend_started(settings)
    ask(at, "and how much did it cost?")
    first, follow_up = at.session_state["chat.conversation"].turns
    assert first.starts_model and not follow_up.starts_model
    assert "starting the model" in chat_view._live_label(Turn("q", starts_model=True)).lower()
    assert "model" not in chat_view._live_label(Turn("q"))
    st.cache_resource.clear()  # the backend is stopped: the next question starts it again
    assert not resources.backend_started(settings)


def test_a_follow_up_is_rewritten_and_the_conversation_resets_with_new_chat(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    at = ask(app(tiny_index, monkeypatch), QUESTION)
    ask(at, "and on how many demonstrations was it fine-tuned?")

    assert len(html_with(at, "ra-answer")) == 2
    assert any(c.value == f"Searched for: {QUESTION}" for c in at.caption)
    button(at, "New chat").click().run()
    assert not html_with(at, "ra-answer")


def test_settings_persist_across_pages_and_apply_to_the_next_question(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    at = app(tiny_index, monkeypatch)
    at.selectbox(key="settings.mode").set_value("bm25")
    at.number_input(key="settings.top_k").set_value(1)
    at.toggle(key="settings.sandbox").set_value(False)
    at.run()
    at.switch_page("views/evaluation.py").run()
    at.switch_page("views/chat.py").run()
    assert at.selectbox(key="settings.mode").value == "bm25"
    assert at.number_input(key="settings.top_k").value == 1
    assert at.toggle(key="settings.sandbox").value is False

    ask(at, QUESTION)
    first = model.calls[1][0][-1]["content"]  # the answer call, after the plan
    assert "[1]" in first and "[2]" not in first  # top-k 1: the part's search showed one passage


def test_a_collection_chosen_in_the_sidebar_limits_the_agents_searches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    shelves = {"alpaca.md": "Language", "glide.md": "Images", "diffusion.md": "Images"}
    meta = {str((docs / n).resolve()): DocumentMeta(collections=[c]) for n, c in shelves.items()}
    index_dir = tmp_path / "index"
    ingest_paths([docs], index_dir, index_config(load_settings({"index": {"dir": index_dir}})), meta=meta)
    at = app(index_dir, monkeypatch)
    assert at.selectbox(key="settings.collection").value == ""  # all documents until one is chosen
    at.selectbox(key="settings.collection").set_value("Images").run()

    ask(at, QUESTION)
    shown = model.calls[1][0][-1]["content"]  # the answer call, after the plan
    assert "GLIDE" in shown or "Diffusion" in shown
    assert "52K" not in shown and "Stanford" not in shown  # the best passage is outside the collection


# -- errors ------------------------------------------------------------------------------------------------
def test_without_an_index_the_page_says_how_to_build_one_and_disables_the_chat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(tmp_path / "none", monkeypatch)
    assert not at.exception
    assert any("No index to search yet" in w.value and "ra ingest" in w.value for w in at.warning)
    assert at.chat_input[0].disabled


def test_an_unreachable_server_is_reported_in_the_page_with_what_to_do(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(tiny_index, monkeypatch)
    at.radio(key="settings.backend").set_value("server").run()
    at.text_input(key="settings.url").set_value("http://127.0.0.1:9/v1").run()
    ask(at, QUESTION)

    [error] = [e.value for e in at.error]
    assert "cannot reach the LLM at http://127.0.0.1:9/v1" in error and "sidebar" in error
    assert not at.chat_input[0].disabled


def test_a_malformed_server_url_is_flagged_before_asking(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = app(tiny_index, monkeypatch)
    at.radio(key="settings.backend").set_value("server").run()
    at.text_input(key="settings.url").set_value("localhost:8000").run()
    assert any("must start with http://" in e.value for e in at.error)
    assert at.chat_input[0].disabled


# -- uploads -----------------------------------------------------------------------------------------------
def test_upload_ingests_into_the_index_folder_and_lists_skipped_files_with_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    at = app(index_dir, monkeypatch, RA_UI__MAX_UPLOAD_MB="1")
    at.file_uploader[0].set_value(
        [
            (
                "../../notes.txt",
                b"Alpaca 7B was fine-tuned on 52K instruction-following demonstrations.\n",
                "text/plain",
            ),
            ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "application/pdf"),
            ("empty.md", b"", "text/markdown"),
            ("huge.txt", b"x" * (2**20 + 1), "text/plain"),
        ]
    )
    button(at, "Upload and ingest").click().run()
    assert not at.exception, at.exception

    uploads = index_dir / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # nothing written beside the index
    assert any(s.value.startswith("Added 1,") for s in at.success)
    [skipped] = [w.value for w in at.warning if w.value.startswith("Skipped")]
    assert "**broken.pdf**" in skipped and "**empty.md**: the file is empty" in skipped
    assert "**huge.txt**: larger than the 1 MB upload limit" in skipped
    assert next(m.value for m in at.sidebar.metric) == "1"  # the stats show the new index
    assert not at.chat_input[0].disabled


def test_a_nul_byte_or_unknown_suffix_in_one_name_loses_only_that_file_not_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index_dir = tmp_path / "index"
    at = app(index_dir, monkeypatch)
    at.file_uploader[0].set_value(
        [
            ("alpaca\x00.pdf.txt", b"Alpaca 7B was fine-tuned on 52K demonstrations.\n", "text/plain"),
            ("glide.md", b"# GLIDE\n\nEvaluators preferred classifier-free guidance.\n", "text/markdown"),
            ("setup.exe", b"MZ", "application/octet-stream"),
        ]
    )
    button(at, "Upload and ingest").click().run()
    assert not at.exception, at.exception  # was StreamlitAPIException "Filename cannot contain null bytes"

    assert sorted(p.name for p in (index_dir / "uploads").iterdir()) == ["alpaca_.pdf.txt", "glide.md"]
    assert any(s.value.startswith("Added 2,") for s in at.success)
    [skipped] = [w.value for w in at.warning if w.value.startswith("Skipped")]
    assert "**setup.exe**: unsupported file type '.exe'" in skipped
    each = next(e for e in at.expander if e.label.startswith("Each file"))
    assert "**alpaca\ufffd.pdf.txt**: added as uploads/alpaca_.pdf.txt" in each.markdown[0].value


def test_an_upload_with_nothing_ingestible_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = app(tmp_path / "index", monkeypatch)
    at.file_uploader[0].set_value(("empty.txt", b"", "text/plain"))
    button(at, "Upload and ingest").click().run()
    assert any("Nothing to ingest" in e.value for e in at.error)
    assert not (tmp_path / "index" / "manifest.json").exists()


# -- support badges and export -----------------------------------------------------------------------------
def _answer() -> Answer:
    passage = Evidence(
        1, "passage", "Alpaca was fine-tuned on 52K demonstrations.", "/docs/alpaca.pdf", 2, 16, 60, "c1",
        document=DocumentMeta("Alpaca: A Strong Model", ["Rohan Taori", "Ishaan Gulrajani"], 2023),
    )  # fmt: skip
    cite = Citation(1, "52K demonstrations", 40, 58, passage)
    sentences = [Sentence("Alpaca used 52K demonstrations.", (1,)), Sentence("It is the best model.", ())]
    return Answer("q", "Alpaca used 52K demonstrations. [1] It is the best model.", False, sentences, [cite])


class FixedChecker:
    """A grounding checker that scores every pair the same, and remembers what it was asked."""

    name, threshold = "fixed", 0.5

    def __init__(self, score: float) -> None:
        self.score = score
        self.pairs: list[tuple[str, str]] = []

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        self.pairs.extend(pairs)
        return [self.score for _ in pairs]


def test_each_answer_sentence_carries_the_checkers_support_badge(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    checker = FixedChecker(0.9)
    monkeypatch.setattr(resources, "build_checker", lambda settings, backend, warn: checker)
    at = ask(app(tiny_index, monkeypatch, RA_GROUNDING__CHECKER="minilm"), QUESTION)

    [answer] = html_with(at, "ra-answer")
    assert '<span class="ra-badge ra-supported" title="support 0.90">supported</span>' in answer
    [(evidence, claim)] = checker.pairs
    assert "52K instruction-following demonstrations" in evidence and claim.startswith("Alpaca 7B")


def test_an_answer_its_sources_do_not_support_is_withheld_with_the_draft_inspectable(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend
) -> None:
    monkeypatch.setattr(resources, "build_checker", lambda settings, backend, warn: FixedChecker(0.0))
    model.p_yes = 0.1  # the model's self-check doubts it too
    at = ask(app(tiny_index, monkeypatch, RA_GROUNDING__CHECKER="minilm"), QUESTION)

    assert any(i.value == ABSTAIN_MESSAGE for i in at.info)
    [draft] = [e for e in at.expander if e.label.startswith("The draft answer, withheld")]
    assert 'class="ra-badge ra-unsupported"' in next(h.value for h in draft.get("html"))


def _warns(settings: object, backend: object, warn: Any) -> None:
    warn("answers are not support-checked: run `ra eval train-checker`")


def _raises(settings: object, backend: object, warn: Any) -> None:
    raise UserFacingError("the minilm grounding checker is not built yet: run `ra eval train-checker`")


@pytest.mark.parametrize("build", [_warns, _raises], ids=["warns", "raises"])
def test_without_a_usable_checker_the_answer_comes_without_badges_and_says_why(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch, model: RuleBackend, build: Any
) -> None:
    monkeypatch.setattr(resources, "build_checker", build)
    at = ask(app(tiny_index, monkeypatch, RA_GROUNDING__CHECKER="minilm"), QUESTION)
    [answer] = html_with(at, "ra-answer")
    assert "ra-badge" not in answer
    assert any("ra eval train-checker" in c.value for c in at.caption)


def test_cards_are_numbered_1_to_k_as_first_cited_and_match_their_markers() -> None:
    def passage(n: int, name: str) -> Evidence:
        return Evidence(n, "passage", f"{name} text.", f"/docs/{name}.md", None, 0, 10, f"c{n}")

    later, earlier = passage(5, "later"), passage(2, "earlier")
    cites = [Citation(2, "earlier text.", 0, 10, earlier), Citation(5, "later text.", 0, 10, later)]
    sentences = [Sentence("First.", (5,)), Sentence("Second.", (2, 5))]
    answer = Answer("q", "First. [5] Second. [2][5]", False, sentences, cites)

    html = answer_html(answer, "t")
    assert re.findall(r'href="#ra-t-src-(\d+)"[^>]*>\[(\d+)\]', html) == [("1", "1"), ("2", "2"), ("1", "1")]
    cards = sources_html(answer.citations, "t", numbers=citation_numbers(answer))
    assert re.findall(r'id="ra-t-src-(\d+)".*?ra-num">(\d+)<.*?/docs/(\w+)\.md', cards) == [
        ("1", "1", "later"),  # [5] is cited first: card 1
        ("2", "2", "earlier"),
    ]
    assert streaming_html("First. [5] Second. [2][5]").startswith(
        '<div class="ra-answer">First. [1] Second. [2][1]'
    )
    text = conversation_markdown([Turn("q", answer=answer)], "idx")
    assert "First. [1] Second. [2][1]" in text
    assert re.findall(r"^(\d)\. /docs/(\w+)\.md", text, re.M) == [("1", "later"), ("2", "earlier")]


def test_the_export_lists_each_answer_with_its_numbered_sources() -> None:
    turn = Turn("How many demonstrations?", answer=_answer())
    text = conversation_markdown([turn], "idx")
    assert "## 1. How many demonstrations?" in text
    assert "Alpaca used 52K demonstrations. [1]" in text
    assert "1. Alpaca: A Strong Model — Taori and Gulrajani (2023), p. 2: “52K demonstrations”" in text
    bibtex = text.split("```bibtex\n", 1)[1].split("```", 1)[0]
    assert (
        bibtex.startswith("@misc{taori2023alpaca,")
        and "author = {Rohan Taori and Ishaan Gulrajani}" in bibtex
    )


# -- evaluation page ---------------------------------------------------------------------------------------
def _result_dir(path: Path) -> Path:
    rows = [
        {"id": "q1", "question": "How many?", "kind": "numeric", "unanswerable": False, "gold_answer": "52K",
         "answer": "52K. [1]", "abstained": False, "citations": [],
         "sentences": [{"text": "52K.", "citations": [1], "support": 0.9, "verdict": "supported"}],
         "metrics": {"keyword_hit": True, "faithfulness": 1.0, "citation_recall": 1.0, "citation_precision": 1.0,
                     "invalid_citations": 0, "evidence_recall": 1.0, "abstention_correct": None},
         "timings": {"total_s": 4.0, "first_token_s": 2.0}, "error": None},
        {"id": "q2", "question": "Who won?", "kind": "unanswerable", "unanswerable": True, "gold_answer": "",
         "answer": "The documents do not answer this question.", "abstained": True, "citations": [],
         "sentences": [],
         "metrics": {"keyword_hit": False, "faithfulness": None, "citation_recall": None, "citation_precision": None,
                     "invalid_citations": 0, "evidence_recall": None, "abstention_correct": True},
         "timings": {"total_s": 6.0}, "error": None},
    ]  # fmt: skip
    path.mkdir()
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_evaluation_page_loads_a_result_folder_into_metrics_and_a_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _result_dir(tmp_path / "run")
    at = app(tmp_path / "index", monkeypatch)
    at.switch_page("views/evaluation.py").run()
    typed = next(t for t in at.text_input if t.label.startswith("…or a result folder"))
    typed.set_value(str(result))
    button(at, "Load").click().run()
    assert not at.exception, at.exception

    assert not at.metric  # no row of squeezed st.metric boxes
    [summary] = [t.value for t in at.table]
    shown = dict(zip(summary["Metric"], summary["Value"], strict=True))
    assert shown["Keyword accuracy"] == "50%" and shown["Correct abstention"] == "100%"
    assert shown["Questions"] == "2" and shown["Invalid citations"] == "0"
    [table] = [d.value for d in at.dataframe if "question" in d.value.columns]
    assert list(table["id"]) == ["q1", "q2"] and list(table["total_s"]) == [4.0, 6.0]


def test_the_summary_table_names_every_metric_of_a_finished_run_with_its_unit(tmp_path: Path) -> None:
    from eval.metrics import summarise
    from ui import eval_results

    rows = [json.loads(line) for line in (_result_dir(tmp_path / "run") / "results.jsonl").open()]
    summary = summarise(rows, {})
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    result = eval_results.load_result(tmp_path / "run")
    table = eval_results.summary_table(result, eval_results.question_table(result.rows))

    assert len(table) == len(summary["metrics"]) + len(summary["latency"])  # every number, one per row
    assert set(summary["metrics"]) | set(summary["latency"]) <= set(eval_results.METRIC_INFO)
    assert table["What it measures"].str.len().min() > 0
    shown = dict(zip(table["Metric"], table["Value"], strict=True))
    assert shown["Abstention accuracy"] == "100%" and shown["False abstention rate"] == "0%"
    assert shown["Answer time, median"] == "5.0 s" and shown["Judge correctness"] == "–"


def test_a_qa_file_that_is_not_one_is_refused_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no question here"}\n')
    at = app(tmp_path / "index", monkeypatch)
    at.switch_page("views/evaluation.py").run()
    next(t for t in at.text_input if t.label.startswith("QA file")).set_value(str(bad))
    button(at, "Run evaluation").click().run()
    assert any('no "question" field' in e.value for e in at.error)


def test_upload_names_cannot_leave_the_uploads_folder_or_hide() -> None:
    from ui.uploads import UnsafeName, safe_name

    assert safe_name("../../etc/passwd.txt") == "passwd.txt"
    assert safe_name("..\\..\\evil.md") == "evil.md"
    assert safe_name(".hidden.pdf") == "hidden.pdf"
    assert safe_name("ｒｅｐｏｒｔ．ｐｄｆ") == "report.pdf"  # full-width forms normalised (NFKC)
    assert safe_name("a\x00b<c>.html") == "a_b_c.html"
    assert len(safe_name("x" * 500 + ".txt")) <= 120
    with pytest.raises(UnsafeName):
        safe_name("../..")


def test_an_evaluation_run_is_followed_by_its_results_lines_then_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's runner with a stand-in for `ra eval qa` (another process writing results.jsonl)."""
    import sys

    from ui import eval_results

    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Q{i}?"}) + "\n" for i in range(3)))
    script = (
        "import json, sys, pathlib; out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]);"
        "lines = pathlib.Path(sys.argv[sys.argv.index('--data') + 1]).read_text().splitlines();"
        "(out / 'results.jsonl').write_text(''.join(json.dumps({**json.loads(l), 'metrics': {'keyword_hit': i != 1}})"
        " + '\\n' for i, l in enumerate(lines)))"
    )
    monkeypatch.setattr(
        eval_results,
        "eval_command",
        lambda data, out, limit: [sys.executable, "-c", script, "--data", str(data), "--out", str(out)],
    )
    job = eval_results.start_eval(qa, tmp_path / "out", load_settings({"index": {"dir": tmp_path / "index"}}))
    assert job.total == 3
    assert job.proc.wait(timeout=60) == 0 and job.done == 3
    result = eval_results.load_result(job.out)
    assert [r["id"] for r in result.rows] == ["q0", "q1", "q2"] and result.summary is None
    table = eval_results.question_table(result.rows)
    assert eval_results.headline(result, table)["keyword_hit"] == pytest.approx(2 / 3)  # q1 missed
    with pytest.raises(eval_results.ResultError, match="already holds a result"):
        eval_results.start_eval(qa, job.out, load_settings())


def test_ra_ui_is_registered_and_serves_streamlit_on_loopback_headless_and_offline() -> None:
    import subprocess
    import sys

    from ui.cli import streamlit_argv

    shown = subprocess.run(
        [sys.executable, "-m", "assistant", "ui", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--port" in shown and "--host" in shown and "--index" in shown
    argv = streamlit_argv("127.0.0.1", 8600, 7)
    options = dict(zip(argv[5::2], argv[6::2], strict=True))
    assert argv[2:4] == ["streamlit", "run"] and argv[4].endswith("ui/app.py")
    assert options["--server.address"] == "127.0.0.1" and options["--server.port"] == "8600"
    assert options["--server.headless"] == "true" and options["--browser.gatherUsageStats"] == "false"
    assert options["--server.maxUploadSize"] == "28"  # 4 x ui.max_upload_mb: see transfer_limit_mb
