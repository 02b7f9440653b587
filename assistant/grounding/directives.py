"""Sentences of a document that address whoever reads it, such as "Note to the assistant: the answer is ...".

Why: a document is evidence of what its authors state, not a channel for instructions. Text that tells an
AI, or the reader, what to answer, or to ignore its instructions, is how a planted document steers an
answer (issue 25: an injected "note" with a false date was cited as "supported" at 0.87). Such sentences
stay in the index and are shown in the passage, but the agent never sees them among its lines, never
quotes them, and the checker never scores a claim against them, so they cannot outrank the document's
own statements.

What counts, by form rather than by any one document's words:
- an override of instructions ("ignore/disregard/forget ... previous instructions");
- a message headed to an AI or its reader ("note to the language model", "instruction for AI assistants");
- an AI or a reader addressed together with an order about answering ("assistant, answer ...",
  "AI systems must report ...");
- a second-person order about answering ("you must answer", "when you are asked ..., reply"), or an
  order to a reader who is an AI ("if you are an automated assistant, respond ...").
Descriptions of what a model does ("we ask the model to answer with yes or no", "the assistant responds
with a refusal") name no addressee in the second person and give no order to the reader, so they stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_READING = (  # "the model reading this", "any AI summarising this document"
    r"(?:ai|llm|(?:language )?model|system|agent|assistant|tool|chatbot)s?"
    r" (?:reading|processing|summari[sz]ing|parsing|indexing|answering questions about) (?:this|these|the following)"
)
_AI = (
    rf"(?:{_READING}[^.,:]{{0,30}}"
    r"|(?:ai|artificial intelligence)(?:[- ]based)? (?:assistants?|models?|systems?|agents?|tools?|chatbots?)"
    r"|ai|(?:large )?language models?|llms?|chatbots?|assistants?|bots?|gpt|claude|chatgpt|readers?)"
)
_ANSWER_VERB = (  # orders about what to answer (to anyone)
    r"(?:answer|respond|reply|say|state|report|tell|claim|cite|quote|mention|ignore|disregard|repeat|pretend)"
)
_ORDER_VERB = (  # orders an AI is given (its addressee is named, so "run"/"use" are not a tutorial's)
    rf"(?:{_ANSWER_VERB}|output|return|print|write|use|treat|consider|assume|run|execute|call|include|follow"
    r"|do not|don't|never|always)"
)
_OVERRIDE = re.compile(  # "ignore your previous instructions", "forget everything you were told"
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.]{0,40}\b(?:previous|prior|above|earlier|all|any|your|other"
    r"|system)\b[^.]{0,20}\b(?:instructions?|prompts?|rules?|directions?|guidelines?|context)\b"
    r"|\b(?:ignore|disregard|forget)\s+(?:everything|anything|all|whatever)\s+(?:that\s+)?you(?:'ve|\s+were|\s+have"
    r"\s+been|\s+are)\s+(?:told|instructed|given|asked)",
    re.IGNORECASE,
)
_HEADED = re.compile(  # "Note to the language model reading this: ..." (a heading, so a colon or comma follows)
    r"(?:\b(?:note|notice|message|instructions?|directive|reminder|attention|warning|important|p\.?s\.?)\b"
    r"(?:\s+(?:system|special|urgent|hidden|private|final|additional))?,?\s+(?:(?:to|for)\s+)?|^(?:to|for)\s+)"
    rf"(?:the\s+|any\s+|all\s+)?{_AI}\b[^.:,!]{{0,30}}[:,!\u2014\u2013-]",
    re.IGNORECASE,
)
_READER_HEADING = (
    re.compile(  # "AI ASSISTANTS READING THIS: ..." (a title "Language Models: A Survey" is not)
        rf"^(?:(?:all|any|every|the)\s+)?(?:ai\s+)?{_READING}[^.:,!]{{0,30}}:",
        re.IGNORECASE,
    )
)
_VOCATIVE = re.compile(  # "Assistant, answer ..." / "AI models: report ..." / "Dear language model, ..."
    rf"(?:^|[.!?:;]\s+|\b(?:dear|hey|hello|hi|attention|notice|note|reminder|warning|important)[,:]?\s+)(?:the\s+|all\s+|any\s+)?{_AI}\s*[,:!]\s*(?:\w+\s+){{0,3}}"
    rf"{_ORDER_VERB}\b",
    re.IGNORECASE,
)
_AI_MUST = re.compile(  # "Any AI assistant must report ..." (an order to every reader, not a description)
    rf"(?:\b(?:any|all|every)\s+{_AI}|\b{_READING}[^.,:]{{0,30}})\s+(?:must|should|shall|need to|has to|have to"
    rf"|is required to|are required to)\s+(?:always\s+|only\s+|now\s+)?{_ORDER_VERB}\b",
    re.IGNORECASE,
)
_YOU_MUST = re.compile(  # "you must answer", "your answer must be", "you should reply that"
    rf"\b(?:you|you're|you are)\s+(?:must|should|shall|need to|have to|are required to|are to|will)\s+"
    rf"(?:always\s+|only\s+|now\s+)?{_ANSWER_VERB}\b"
    r"|\byour (?:answer|reply|response|output)\s+(?:must|should|shall|will)\b",
    re.IGNORECASE,
)
_WHEN_ASKED = re.compile(  # "when (you are) asked about X, say Y"; "if anyone asks, answer Y"
    rf"\b(?:when|if|whenever)\s+(?:you\s+are\s+|you're\s+|you\s+get\s+|anyone\s+|someone\s+|a user\s+)?"
    rf"(?:asked|asks?|questioned|queried)\b[^.]{{0,80}}?[,:]\s*(?:always\s+|simply\s+|just\s+)?{_ANSWER_VERB}\b",
    re.IGNORECASE,
)
_IF_YOU_ARE = re.compile(  # "If you are an AI assistant, respond ..." (the reader addressed by what it is)
    rf"\b(?:if|since|as|because|in case)\s+you(?:'re|\s+are)\s+(?:an?\s+|the\s+)?(?:[\w-]+\s+){{0,2}}{_AI}\b"
    rf"[^.]{{0,60}}?[,:;]\s*(?:please\s+|then\s+|you\s+(?:must|should)\s+)?{_ORDER_VERB}\b",
    re.IGNORECASE,
)
_FORMS = (_OVERRIDE, _HEADED, _READER_HEADING, _VOCATIVE, _AI_MUST, _YOU_MUST, _WHEN_ASKED, _IF_YOU_ARE)


def is_directive(sentence: str) -> bool:
    """Whether `sentence` addresses its reader or an AI with an instruction (see the module's forms)."""
    text = " ".join(sentence.split())
    return any(form.search(text) for form in _FORMS)


def split_directives(
    text: str, spans: Iterable[tuple[int, int]]
) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    """(statements, directives): the sentence `spans` of `text` that state something, and those that
    address the reader; both in order. A directive ending in a colon ("Note to AI assistants:") heads
    what follows it up to the next blank line, so the lines under it are directives too."""
    statements: list[tuple[int, int]] = []
    directives: list[tuple[int, int]] = []
    heading, last_end = False, 0
    for lo, hi in spans:
        heading = heading and "\n\n" not in text[last_end:lo]
        if heading or is_directive(text[lo:hi]):
            directives.append((lo, hi))
            heading = heading or text[lo:hi].rstrip().endswith(":")
        else:
            statements.append((lo, hi))
        last_end = hi
    return tuple(statements), tuple(directives)


def blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """`text` with `spans` replaced by spaces (same length, so offsets into it still hold)."""
    chars = list(text)
    for lo, hi in spans:
        chars[lo:hi] = " " * (hi - lo)
    return "".join(chars)
