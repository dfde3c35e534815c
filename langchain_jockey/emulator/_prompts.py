"""Reading a prompt: the question a chain's message asks, apart from the rest.

Chains don't send bare questions. A message built by a prompt template holds
retrieved context, instructions, perhaps a greeting, and somewhere the
question. The model of a prompt, in the order it is read:

1. **Transcript**: `Conversation so far:` … `New message:` (how ChatJockey
   folds history it cannot send as a session) splits off the history; only the
   new message is read further.
2. **Sections**: a line that starts with a known label begins a section
   (`Context:`, `Documents:`, `Clips:`, `Document 2:` … are context;
   `Question:`, `Query:`, `Input:` the question; `Answer:` ends the prompt;
   `Instructions:` instructions), and so do the same labels inline after a
   sentence (`… say so. Question: … Context: …`), `<context>` tags and text
   fenced by `---` / `===` / three backticks. A list item (`- `, `1. `,
   `[1] `) outside a section is a retrieved passage too, and so are the lines
   after an instruction that ends by introducing them ("…based only on the
   following context:").
3. **Sentences** of what is left: greetings and a name for the assistant
   ("Hey Jockey,") and sign-offs ("Thanks!") are dropped, and so, beside a
   sentence that asks, are a person's name in a lead-in ("Quick one from
   Priya:"), an introduction ("This is Sam from the club.") or a signature
   ("— Priya"): who asks is not what is asked; instructions ("Use
   the following pieces of context…", "Answer in one sentence", "If you don't
   know, say so") join the system instructions. A sentence that asks (`?`) is
   never an instruction.
4. **The question** is the `Question:` section, else the last paragraph left
   that asks, else all that is left.

A system message is read the same way, except that all but its context is
instructions. `mentions` finds the store's moments that context or history
names (by description, by title and time range, or by `ksi_…#t=` source), so
the answer can lean towards them; nothing the prompt alone names is cited.
`discussed` finds the moment a folded transcript's last answer told, also in
its own words or by its time range alone, for "next" to continue from. A
prompt that says to answer only from its context (`only_context`) is answered
only when its context `holds` the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from langchain_jockey.emulator._store import KnowledgeStore, Moment, terms

__all__ = [
    "Prompt",
    "Style",
    "discussed",
    "domain",
    "holds",
    "mentions",
    "read",
    "style",
]

_TRANSCRIPT = re.compile(r"^Conversation so far:\n(.*)\n\nNew message:\n", re.DOTALL)
_CONTEXT = (
    r"context|contexts|context information|documents?|docs|sources?|passages?|"
    r"retrieved (?:context|documents?|passages?|clips?)|relevant (?:clips?|documents?)|"
    r"(?:video )?clips?|excerpts?|search results|results|information|background|"
    r"evidence|facts|references?|title|content|page_content|metadata|transcript"
)
_LABELS = {
    "context": re.compile(rf"(?:{_CONTEXT})(?: \d+)?", re.IGNORECASE),
    "question": re.compile(
        r"question|query|user question|user query|input|q|human|user|new message",
        re.IGNORECASE,
    ),
    "answer": re.compile(
        r"answer|helpful answer|final answer|a|response|ai|assistant", re.IGNORECASE
    ),
    "instructions": re.compile(
        r"instructions?|system|rules|guidelines|task|note", re.IGNORECASE
    ),
}
_LABEL = re.compile(r"^\s*(?:#+\s*)?([A-Za-z_][A-Za-z_ ]{0,30}?(?: \d+)?)\s*:\s?(.*)$")
_TAG = re.compile(
    r"^\s*<(/?)\s*([a-z_ ]+)>\s*(.*?)\s*(?:</[a-z_ ]+>)?\s*$", re.IGNORECASE
)
_INLINE = re.compile(  # "… say so. Question: …" on one line: a label after a sentence
    r"(?<=\S)[ \t]+(?=(?:Question|Query|Context|Documents|Sources|Answer|"
    r"Helpful Answer|QUESTION|CONTEXT|ANSWER)\s*:)"
)
# An instruction that ends by introducing the context below it.
_INTRODUCES = re.compile(
    rf"\b(?:{_CONTEXT}|clips?|videos?|passages?)\b[^:\n]{{0,20}}:\s*$", re.IGNORECASE
)
_FENCE = re.compile(r"^\s*(?:-{3,}|={3,}|`{3}\w*|\"{3}|~{3,})\s*$")
_ITEM = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)]|\[\d+\])\s+")
_SENTENCE = re.compile(r"(?<=[.!?:;])\s+")
_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening)|"
    r"dear)\b[^,!.?\n]{0,24}[,!.:\u2014-]+|(?:ok(?:ay)?|so|well|jockey|assistant)"
    r"\s*[,:])\s*",
    re.IGNORECASE,
)
# "Quick one from Priya:", "A question from Sam -": who asks is not what is asked.
_FROM = re.compile(
    r"^(?:(?:a|one|another|quick|small|short|little)\s+)*(?:question|one|q|query|"
    r"note|message)\s+(?:from|for)\s+[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?\s*"
    r"[:,\u2013\u2014-]+\s*",
    re.IGNORECASE,
)
# A signature or an introduction: "— Priya", "Priya here.", "This is Sam from the club."
_SIGNATURE = re.compile(
    r"^(?:[-\u2013\u2014~]+\s*)?(?:(?i:it'?s|this is|i'?m|i am|my name is)\s+)?"
    r"[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?(?:\s+here)?(?:\s+from\s+[^?]{1,40})?"
    r"\s*[.!]*$"
)
_ADDRESS = re.compile(r",\s*(?:jockey|assistant|please)\s*(?=[?.!]*$)", re.IGNORECASE)
_SIGN_OFF = re.compile(
    r"^(?:thanks|thank you|thx|ta|cheers|many thanks|much appreciated|regards|"
    r"kind regards|best(?: wishes)?|bye|see you|have a (?:good|nice|great))\b",
    re.IGNORECASE,
)
_INSTRUCTION = re.compile(
    r"^(?:please\s+)?(?:use|answer|respond|reply|keep|be|do not|don't|never|always|"
    r"only|cite|include|you are|you're|act as|as an?|if you|if the|think|format|"
    r"write (?:the|your) answer|return|provide|limit|stick|ground|make sure|"
    r"remember|the following|below|above|here (?:is|are)|given|you will|you must|"
    r"you should|your (?:task|job|answer|role)|avoid|don't|context information)\b",
    re.IGNORECASE,
)
_LEAD_IN = re.compile(  # "Based on the context above, who …?" asks "who …?"
    r"^(?:based on|using|according to|from|given|with)\s+(?:the|these|this|those)?\s*"
    r"(?:context|documents?|clips?|passages?|sources?|information|videos?|above|"
    r"below|following)[^,]*,\s*",
    re.IGNORECASE,
)
_SPAN = re.compile(r"(\d\d):(\d\d)\s*[\u2013-]\s*\d\d:\d\d")


@dataclass(frozen=True)
class Prompt:
    """A prompt read apart: what to answer, how, and what came with it."""

    question: str
    instructions: str
    context: str
    history: str = ""
    only_context: bool = False
    """It says to answer from its context alone ("based only on the context")."""


def _kind(label: str) -> str | None:
    return next((k for k, p in _LABELS.items() if p.fullmatch(label.strip())), None)


def _sections(text: str) -> list[tuple[str | None, str]]:
    """(kind, line) of each line: the kind of the section it is in, or None."""
    out: list[tuple[str | None, str]] = []
    kind: str | None = None
    fenced = False
    for line in _INLINE.sub("\n", text).split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
            kind = "context" if fenced else None
            continue
        tag, label = _TAG.match(line), _LABEL.match(line)
        if not fenced and tag and _kind(tag.group(2)):
            kind = None if tag.group(1) else _kind(tag.group(2))
            line = tag.group(3)  # noqa: PLW2901 - the text after the tag
        elif not fenced and label and _kind(label.group(1)):
            kind, line = _kind(label.group(1)), label.group(2)  # noqa: PLW2901
        if kind is None and _ITEM.match(line):
            out.append(("context", line))
            continue
        if kind is None and not fenced and _INTRODUCES.search(line):
            out.append(("instructions", line))  # "…based only on this context:"
            kind = "context"
            continue
        out.append((kind, line))
    return out


def _paragraphs(lines: list[str]) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", "\n".join(lines)) if p.strip()]


def _clean(sentence: str) -> str:
    """A sentence without its greeting, address or lead-in."""
    sentence = _GREETING.sub("", sentence.strip())
    sentence = _FROM.sub("", sentence)
    sentence = _LEAD_IN.sub("", sentence)
    return _ADDRESS.sub("", sentence).strip()


def _sort(paragraph: str, instructions: list[str]) -> str:
    """What of a paragraph may be the question; instructions go to `instructions`.

    Greetings, sign-offs and, beside a sentence that asks, a signature or an
    introduction ("— Priya", "This is Sam.") and a lead-in ("Quick one:") are
    dropped: a person's name there is not what the question is about.
    """
    kept: list[str] = []
    sentences = _SENTENCE.split(paragraph.replace("\n", " "))
    asks = any(s.rstrip().endswith("?") for s in sentences)
    for raw in sentences:
        sentence = _clean(raw)
        if not sentence or _SIGN_OFF.match(sentence):
            continue
        aside = _SIGNATURE.match(sentence) or (asks and sentence.endswith(":"))
        if aside and not sentence.endswith("?") and (asks or kept):
            continue
        if not sentence.endswith("?") and _INSTRUCTION.match(sentence):
            instructions.append(sentence)
        else:
            kept.append(sentence)
    return " ".join(kept)


def _split(text: str) -> tuple[str, list[str], list[str], list[str]]:
    """(question section, other paragraphs, instruction lines, context lines)."""
    sections = _sections(text)
    asked = [line for kind, line in sections if kind == "question"]
    context = [line for kind, line in sections if kind == "context"]
    told = [line for kind, line in sections if kind == "instructions"]
    rest = _paragraphs([line for kind, line in sections if kind is None])
    return " ".join(s.strip() for s in asked if s.strip()), rest, told, context


def _told(text: str) -> str:
    """All of `text` but its context: where a prompt says how to answer."""
    return "\n".join(line for kind, line in _sections(text) if kind != "context")


def read(content: str, instructions: str | None = None) -> Prompt:
    """The prompt in `content` (the user message) and `instructions` (system)."""
    history = ""
    found = _TRANSCRIPT.match(content)
    if found:
        history, content = found.group(1), content[found.end() :]
    asked, rest, told, context = _split(content)
    system_asked, system_rest, system_told, system_context = _split(instructions or "")
    how = [*system_told, *system_rest, *([system_asked] if system_asked else []), *told]
    left = [p for p in (_sort(p, how) for p in rest) if p]
    if asked:
        question = _sort(asked, how) or asked
        how.extend(left)  # text around a labelled question tells how to answer
    else:
        asking = [p for p in left if p.endswith("?")]
        question = asking[-1] if asking else " ".join(left)
        last = _paragraphs(context)[-1:]
        if not question and last and not _ITEM.match(last[0]):
            # "Context:\n{context}\n\n{question}": the question ends the context.
            question = _sort(last[0], [])
            if question.endswith("?"):
                context = "\n".join(context).rsplit(last[0], 1)[0].split("\n")
            else:
                question = ""
    context_text = "\n".join([*system_context, *context])
    only = _ONLY_CONTEXT.search(f"{_told(content)}\n{_told(instructions or '')}")
    return Prompt(
        question=question or content.strip(),
        instructions="\n".join(how),
        context=context_text,
        history=history,
        only_context=bool(only) and bool(context_text.strip()),
    )


def mentions(store: KnowledgeStore, text: str) -> list[Moment]:
    """The store's moments `text` names, in the order it names them.

    A moment is named by its description, or on one line by its video (title
    or item id) with its start time (`03:05-03:50`, en dash too) or source
    (`#t=185,230`).
    """
    lowered = text.lower()
    found: dict[Moment, int] = {}
    for video in store.videos:
        for moment in video.moments:
            at = lowered.find(moment.description.lower())
            if at >= 0:
                found.setdefault(moment, at)
    offset = 0
    for line in lowered.split("\n"):
        for video in store.videos:
            if video.title.lower() not in line and video.item_id not in line:
                continue
            starts = {int(m) * 60 + int(s) for m, s in _SPAN.findall(line)}
            starts |= {int(float(t)) for t in re.findall(r"#t=(\d+(?:\.\d+)?)", line)}
            for moment in video.moments:
                if int(moment.start_sec) in starts:
                    found.setdefault(moment, offset)
        offset += len(line) + 1
    return sorted(found, key=lambda m: found[m])


_FULL_SPAN = re.compile(r"(\d\d):(\d\d)\s*[\u2013-]\s*(\d\d):(\d\d)")


def discussed(store: KnowledgeStore, history: str) -> Moment | None:
    """The moment a folded transcript discussed last, which "next" continues.

    The last moment the history names (`mentions`); else, in the last
    assistant turn, the last time range that only one moment has
    (`03:05-03:50`), or the last sentence that tells a moment in other words
    (most of its words are the moment's).
    """
    named = mentions(store, history)
    if named:
        return named[-1]
    turn = re.split(r"(?:^|\n)Assistant: ", history)[-1].split("\nUser: ")[0]
    if turn == history:
        return None
    moments = [m for v in store.videos for m in v.moments]
    for match in reversed(list(_FULL_SPAN.finditer(turn))):
        a, b, c, d = (int(x) for x in match.groups())
        same = [
            m for m in moments if (m.start_sec, m.end_sec) == (a * 60 + b, c * 60 + d)
        ]
        if len(same) == 1:
            return same[0]
    for sentence in reversed(_SENTENCE.split(turn)):
        words = set(terms(sentence, question=True))
        ranked = store.rank(sentence) if words else []
        if ranked and len(words & set(ranked[0][1].counts)) * 2 >= len(words):
            return ranked[0][1]
    return None


# "Answer only from the context", "not prior knowledge", "if the context does
# not contain the answer": the answer may use nothing but the prompt's context.
_ONLY_CONTEXT = re.compile(
    r"\bonly\b[^.?!\n]{0,60}\b(?:context|documents?|sources?|passages?|clips?|"
    r"excerpts?|information|provided|given|above|below|following)\b|"
    r"\bnot (?:use )?prior knowledge\b|\bsolely\b|"
    r"\b(?:without|no|not|never|don't|do not)\s+(?:use\s+|using\s+)?(?:any\s+)?"
    r"(?:outside|external|prior|other|your own)\s+(?:knowledge|information|sources)|"
    r"\b(?:if|when) the (?:context|documents?|clips?|sources?|passages?|information)"
    r" (?:does not|doesn't|do not|don't|cannot|can't) (?:contain|include|say|"
    r"mention|answer|have|cover)",
    re.IGNORECASE,
)


def holds(store: KnowledgeStore, prompt: Prompt) -> bool:
    """Whether the prompt's context can answer its question.

    It can when the question matches in the videos the context names, or
    when most of the question's words are in the context's own text.
    """
    named = frozenset(m.video.item_id for m in mentions(store, prompt.context))
    if named and store.rank(prompt.question, within=named):
        return True
    asked = set(terms(prompt.question, question=True))
    said = set(terms(prompt.context)) | set(terms(prompt.context, question=True))
    return bool(asked) and len(asked & said) * 2 >= len(asked)


_PREFIX = re.compile(
    r'start (?:your answer |the answer )?with "([^"]+)"', re.IGNORECASE
)


@dataclass(frozen=True)
class Style:
    """How to answer: bullets, how many moments, timestamps, a first word."""

    bullets: bool
    limit: int
    timestamps: bool
    prefix: str = ""


def style(instructions: str | None) -> Style:
    """The answer style that `instructions` ask for."""
    text = (instructions or "").lower()
    limit = 3
    if re.search(r"\b(brief|short|concise|one sentence|tl;dr)\b", text):
        limit = 1
    elif re.search(r"\b(detail\w*|thorough\w*|everything)\b", text):
        limit = 5
    prefix = _PREFIX.search(instructions or "")
    return Style(
        bullets="bullet" in text,
        limit=limit,
        timestamps=not re.search(r"\b(no|without) timestamps?\b", text),
        prefix=prefix.group(1) + " " if prefix else "",
    )


# Instructions that set a domain narrow the answer to the videos of that domain.
_DOMAINS = {
    "sports": re.compile(
        r"sport|analyst|coach|football|soccer|referee|athlet", re.IGNORECASE
    ),
    "food": re.compile(
        r"\bchef|\bcook|\bbak|food|culinar|kitchen|recipe", re.IGNORECASE
    ),
    "sea": re.compile(
        r"sailor|maritime|fisher|harbou?r master|coast ?guard", re.IGNORECASE
    ),
}


def domain(store: KnowledgeStore, instructions: str | None) -> frozenset[str] | None:
    """The videos an instruction's domain ("You are a sports analyst") allows."""
    topics = {
        t for t, pattern in _DOMAINS.items() if pattern.search(instructions or "")
    }
    if not topics:
        return None
    return frozenset(v.item_id for v in store.videos if v.topics & topics)
