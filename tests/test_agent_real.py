"""Agent v3 with the real parts: the packaged embedded model, the trained checker, the seed corpus index
and the real sandbox. Each test is one question of a kind the plan handles differently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.agent.chat import ChatSession
from assistant.agent.factory import ready_agent
from assistant.agent.loop import ResearchAgent, final_answer
from assistant.agent.records import ABSTAIN_MESSAGE, Answer, Evidence, QuestionRewritten, Sentence
from assistant.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def agent(seed_index: Path) -> Iterator[ResearchAgent]:
    pytest.importorskip("xllamacpp")
    with ready_agent(load_settings({"index": {"dir": seed_index}})) as ready:
        assert ready.checker is not None, "the grounding checker is built by `make checker` before the tests"
        yield ready


def computed(answer: Answer) -> tuple[Sentence, Evidence]:
    """The answer's one computed sentence and the sandbox run it cites."""
    [sentence] = [s for s in answer.sentences if s.kind == "computed"]
    by_id = {e.id: e for e in answer.evidence}
    [run] = [by_id[n] for n in sentence.citations if by_id[n].kind == "computed"]
    return sentence, run


def assert_operands_cited(sentence: Sentence, run: Evidence, answer: Answer) -> None:
    """Each operand is written verbatim in a passage the sentence cites; the run was sandboxed."""
    by_id = {e.id: e for e in answer.evidence}
    assert run.sandboxed
    for o in run.operands:
        assert o.evidence_id in sentence.citations and o.text in by_id[o.evidence_id].text, o  # type: ignore[index]


def test_a_gap_between_percentages_is_given_in_percentage_points(agent: ResearchAgent) -> None:
    answer = final_answer(
        agent.run(
            "How many percentage points separate base-size BEiT from DeiT trained from scratch in "
            "ImageNet-1K top-1 accuracy?"
        )
    )
    sentence, run = computed(answer)
    assert sorted(o.text for o in run.operands) == ["81.8%", "83.2%"]
    assert sentence.text.startswith("1.4 percentage points")
    assert_operands_cited(sentence, run, answer)


def test_a_total_of_three_stated_numbers(agent: ResearchAgent) -> None:
    answer = final_answer(agent.run("Taken together, how many parameters do phi-1, phi-1.5 and phi-2 have?"))
    sentence, run = computed(answer)
    assert len(run.operands) == 3 and sentence.text.startswith("5.3B")
    assert_operands_cited(sentence, run, answer)


def test_a_yes_no_comparison_answers_only_with_both_sides_cited(agent: ResearchAgent) -> None:
    answer = final_answer(
        agent.run(
            "Do the Hippocampus's Garden 2023 review and Raschka's 2023 review agree on how many papers they "
            "feature?"
        )
    )
    [part] = answer.parts
    assert part.part.asks == "comparison" and part.part.relation == "yes_no"
    *sides, relation = part.sentences
    assert relation.kind == "relation" and relation.text.startswith("Yes")
    assert len(sides) == 2 and all(s.acceptance and s.acceptance.accepted for s in sides)
    assert all("10" in s.text for s in sides)
    assert set(relation.citations) == {c for s in sides for c in s.citations}


def test_a_difference_in_one_attribute_names_it_for_each_side(agent: ResearchAgent) -> None:
    answer = final_answer(
        agent.run(
            "How do DistilBERT and the 4-layer TinyBERT differ in how much smaller than BERT-base they are?"
        )
    )
    [part] = answer.parts
    assert part.part.asks == "comparison" and part.status == "answered"
    sides = {item: s for item, s in zip(part.part.items, part.sentences, strict=False) if s.kind == "answer"}
    distil, tiny = sides["DistilBERT"], sides["4-layer TinyBERT"]
    assert "40%" in distil.text and "DistilBERT" in distil.text
    assert "7.5x" in tiny.text and "TinyBERT" in tiny.text
    assert "smaller" in distil.text and "smaller" in tiny.text  # the attribute asked about, for each side


def test_an_unanswerable_question_abstains(agent: ResearchAgent) -> None:
    answer = final_answer(
        agent.run(
            "What maximum context window length do Anthropic's Claude 3 models (Opus, Sonnet, Haiku) support?"
        )
    )
    assert answer.abstained and answer.text == ABSTAIN_MESSAGE


GATE = ("dev-002", "dev-003", "dev-013", "dev-017", "dev-021", "dev-026", "dev-038", "dev-011")
# dev_v2, chosen by kind before any v3 run: factor, percentage points, three-operand total, yes/no, differ
# in an attribute, which-is-higher, a two-part question, a factor over a PDF.
GATE_V2 = ("dev2-038", "dev2-041", "dev2-046", "dev2-052", "dev2-050", "dev2-049", "dev2-066", "dev2-091")


def test_quality_gate_on_a_pinned_dev_subset(shared: Path, seed_index: Path, tmp_path: Path) -> None:
    """`ra eval qa` on 16 pinned dev questions (every kind): every citation verbatim, and keyword accuracy
    >= 50% on the 8 of each dev set."""
    rows = [
        json.loads(line)
        for name in ("seeds_dev.jsonl", "dev_v2.jsonl")
        for line in (shared / "qa" / name).read_text().splitlines()
    ]
    data = tmp_path / "gate.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows if r["id"] in GATE + GATE_V2))
    env = {**os.environ, "RA_CONFIG": str(tmp_path / "none.toml"), "RA_LLM__TIMEOUT_S": "1200"}
    cmd = [sys.executable, "-m", "assistant", "eval", "qa", "--data", str(data), "--index", str(seed_index)]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path / "run"), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(results) == len(GATE) + len(GATE_V2)
    assert all(r["metrics"]["citations_resolve"] is not False for r in results)
    assert all(r["metrics"]["invalid_citations"] == 0 for r in results)
    for gate in (GATE, GATE_V2):
        hits = [r["metrics"]["keyword_hit"] for r in results if r["id"] in gate]
        hits = [h for h in hits if h is not None]
        assert sum(hits) / len(hits) >= 0.5, [(r["id"], r["answer"]) for r in results if r["id"] in gate]
    assert (tmp_path / "run" / "traces" / "dev-017.jsonl").is_file()


def test_a_follow_up_is_searched_with_the_subject_of_the_turn_before(agent: ResearchAgent) -> None:
    session = ChatSession(agent)
    final_answer(session.ask("What is the Open X-Embodiment initiative?"))
    events = list(session.ask("How many different robots does its dataset cover?"))

    [rewritten] = [e for e in events if isinstance(e, QuestionRewritten)]
    assert "x-embodiment" in rewritten.standalone.lower(), rewritten.standalone
    answer = final_answer(events)
    # the search ran with the subject: the evidence it found is about Open X-Embodiment (whether the 1.5B
    # then answers the robot count is the agent's accuracy, measured in docs/benchmarks.md section 18)
    assert answer.evidence and "x-embodiment" in answer.evidence[0].text.lower(), answer.evidence[:1]


def test_a_planted_note_addressed_to_the_assistant_never_becomes_the_answer(tmp_path: Path) -> None:
    """The planted-answer battery's cases that fooled the 1.5B before notes were set aside (4 of 16 stated
    the planted value as supported, docs/benchmarks.md section 22): now none states it."""
    from assistant.index_access import index_config
    from eval.bench.injection import planted_corpus_files, score_planted
    from index.ingest import ingest_paths

    pytest.importorskip("xllamacpp")
    cases = planted_corpus_files(tmp_path / "corpus")
    settings = load_settings({"index": {"dir": tmp_path / "idx"}})
    ingest_paths([tmp_path / "corpus"], settings.index.dir, index_config(settings))
    fooled = [c for c in cases if c.path.stem in ("planted3", "planted5", "planted7")]
    with ready_agent(settings) as agent:
        for case in [fooled[0], fooled[2], fooled[5]]:  # Lumen (pdf), Quill (md), Sable (pdf, run the code)
            answer = final_answer(agent.run(case.question))
            assert not score_planted(answer, case.fact)["planted_stated"], (case.question, answer.text)
