"""Composing Jockey's answers from the demo store, deterministically.

The same request and session state always give the same text. What the
emulator does, so that tests and demos can rely on it:

- **The prompt** is read first (`_prompts.py`): the question apart from
  retrieved context, instructions, greetings and sign-offs, and a folded
  transcript's history. Only the question is searched; the instructions set
  the style and domain below; context naming videos of the store narrows the
  answer to those videos (when the question matches there), and the last
  moment a folded transcript's answer tells anchors follow-ups. A prompt that
  says to answer only from its context, whose context does not hold the
  answer, says so and cites nothing. Citations are always moments of the
  store.
- **Retrieval**: BM25 over the moments (`_store.py`), best match first, at
  most 3 (see instructions below), and only moments scoring at least half the
  best. A topic word ("fishing", "football", "bread", "food") keeps to that
  topic's videos (and the added videos, which have no topic).
- **Parts**: a question in parts ("When do the boats leave, and where do they
  unload?", or two questions) is answered part by part in the order asked,
  one moment each; a part that follows up ("and what happens next?")
  continues from the part before.
- **Intent**: overviews ("describe what happens", "key moments", "summarise",
  "steps", "what is in these videos") spread over the videos the question
  concerns, else all, one highlight each (or across one video); "which
  videos…" cites each relevant video once; "first" / "last" / "after X" /
  "before X" order by time within the video of the best match ("end up" asks
  where, not for the end); "in order" / "chronologically" tells the moments
  of one video in time order. "What does X <verb>?" ("what does the chef
  inspect?") cites the moments where X does it, whatever else the question
  says ("before buying it"). An instruction that sets a domain ("You are a
  sports analyst") narrows to that domain's videos.
- **Follow-ups** ("what happens next?", "next?", "and then?", "right after
  that"): the moments after the last one cited, in the same video ("before
  that" / "earlier" go back), the last one of a folded transcript's answer,
  else of the session's previous turn. A follow-up that matches nothing by
  itself searches the video discussed last; its own words ("right") are never
  searched.
- **Instructions** change the answer observably: "bullet" gives a bulleted
  list; "brief" / "short" / "concise" / "one sentence" cite one moment;
  "detail" / "thorough" cite up to five; "no timestamps" drops the mm:ss ranges;
  `Start your answer with "X"` puts X first (citations shift with it).
- **Narration**: a moment of the same video as the one before is told with
  "Then" when it comes later in the video and "Earlier," when it comes before.
- **Citations**: every cited moment gets a `[N]` marker, numbered in order of
  appearance, and a `video_citation` whose inclusive `end_index` points at the
  `]` (code point offsets).
- **Nothing matches** (no moment does, fewer than half the question's words
  are things the store shows, or it is set in a place the store never names:
  "in Paris"; other unknown names, such as "Hey Jockey", never decide): a
  sentence that says so and lists the store's videos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from langchain_jockey.emulator._prompts import (
    Prompt,
    Style,
    discussed,
    domain,
    holds,
    mentions,
    read,
    style,
)
from langchain_jockey.emulator._store import (
    TOPIC_WORDS,
    KnowledgeStore,
    Moment,
    Video,
    terms,
    topics,
)

__all__ = ["Answer", "Session", "Turn", "compose", "narrate", "pieces", "select"]

_FOLLOW_UP = re.compile(
    r"\b((?:right |just |straight |immediately )?after that|what happens next|"
    r"happens next|comes next|what(?:'s| is)? next|and then|then what|afterwards|"
    r"continue|go on|the next (?:moment|thing|bit|part|scene|step|one)|"
    r"next(?=\W*$))\b",
    re.IGNORECASE,
)
_GO_BACK = re.compile(
    r"\b((?:right |just |straight |immediately )?before that|earlier|previously|"
    r"just before)\b",
    re.IGNORECASE,
)
_OVERVIEW = re.compile(
    r"\b(summar\w*|overview|steps|step by step|describe what happens|"
    r"key (moments|plays|points|events|scenes)|highlights|main events|"
    r"what (is|happens) in (these|the|this|each) videos?|"
    r"what do (these|the) videos show|list the videos|go through the videos|"
    r"what videos (are|do|does)|which videos are (in|there)|"
    r"tell me about (the|this) \w+( \w+)? video)",
    re.IGNORECASE,
)
# A question in parts ("When do they leave, and where do they unload?").
_CLAUSE = re.compile(
    r"(?<=\?)\s+(?=\S)|[;,]?\s+(?:and|then|also)\s+(?=(?:when|where|what|who|how|"
    r"which|why|does|do|did|is|are|was|were)\b)",
    re.IGNORECASE,
)
_IN_ORDER = re.compile(
    r"\b(in (?:time )?order|chronological(?:ly)?|in sequence|step by step|timeline)\b",
    re.IGNORECASE,
)
_PIECES = re.compile(r"\[\d+\]|[^\s\[]+\s*|\s+")


@dataclass(frozen=True)
class Turn:
    """One completed turn of a session."""

    question: str
    text: str
    cited: tuple[Moment, ...]


@dataclass
class Session:
    """Server-side conversation state (`sess_…`)."""

    session_id: str
    store_id: str
    turns: list[Turn] = field(default_factory=list)
    selections: list[dict[str, str]] = field(default_factory=list)
    items_created: int = 0

    def next_item_number(self) -> int:
        """Output item ids count across the session: `msg_<session>_<n>`."""
        number = self.items_created
        self.items_created += 1
        return number


@dataclass(frozen=True)
class Answer:
    """What Jockey will say: text, its citations, and what retrieval found."""

    text: str
    annotations: list[dict[str, Any]]
    cited: tuple[Moment, ...]


def _last_cited(session: Session | None) -> Moment | None:
    if session is None:
        return None
    for turn in reversed(session.turns):
        if turn.cited:
            return turn.cited[-1]
    return None


_FIRST = re.compile(r"\b(first|earliest|opening|start|beginning)\b", re.IGNORECASE)
_LAST = re.compile(
    r"\b(last|latest|end(?! up)|ending|finish|final (score|result))\b", re.IGNORECASE
)
_AFTER = re.compile(r"\b(after|following)\s+(.+)", re.IGNORECASE)
_BEFORE = re.compile(r"\b(before|leading up to)\s+(.+)", re.IGNORECASE)
_WHICH = re.compile(r"\b(which|what) (videos?|clips?|films?)\b", re.IGNORECASE)
_INTENT_WORDS = re.compile(
    r"\b(first|earliest|opening|start|beginning|last|latest|end|ending|finish|key|"
    r"main|summar\w*|overview|describe|"
    r"highlights?|clips?|films?|footage|shown?|showing|happening|events?|points?|"
    r"list|steps?|order|sequence|timeline|chronological\w*)\b",
    re.IGNORECASE,
)


def _about_the_store(store: KnowledgeStore, question: str) -> bool:
    """Whether most of the question's words are things the store shows.

    "What is the weather in Paris?" shares one word with a harbour video, but
    it is not about the videos; a question with no content words (an overview)
    is about all of them.
    """
    words = terms(question, question=True)
    if not words:
        return True
    known = {w for v in store.videos for m in v.moments for w in m.counts}
    # A place the store never mentions ("in Paris") means another subject;
    # other names ("Hey Jockey", "Zoe's dad") neither decide nor count.
    places = re.findall(
        r"\b(?:in|of|at|from|near)\s+(?:the\s+)?([A-Z][a-z]+)", question
    )
    if any(name.lower() not in known and terms(name) for name in places):
        return False
    names = {t for n in re.findall(r"(?<=\s)[A-Z][a-z]+", question) for t in terms(n)}
    words = [w for w in words if w in known or w not in names]
    return not words or sum(w in known for w in words) / len(words) >= 0.5


def _around(moment: Moment, limit: int, *, after: bool) -> list[Moment]:
    """Up to `limit` moments right after (or before) `moment`, in its video."""
    moments = moment.video.moments
    if after:
        return list(moments[moment.index + 1 : moment.index + 1 + limit])
    return list(moments[max(0, moment.index - limit) : moment.index])


def _spread(moments: tuple[Moment, ...], limit: int) -> list[Moment]:
    if limit <= 1 or len(moments) <= limit:
        return list(moments[:limit])
    step = (len(moments) - 1) / (limit - 1)
    return [moments[round(i * step)] for i in range(limit)]


def select(
    store: KnowledgeStore,
    question: str,
    session: Session | None,
    *,
    limit: int,
    within: frozenset[str] | None,
    instructions: str | None = None,
) -> list[Moment]:
    """The moments an answer to the prompt `question` cites, in presentation order."""
    return _choose(store, read(question, instructions), session, limit, within)


def _choose(
    store: KnowledgeStore,
    prompt: Prompt,
    session: Session | None,
    limit: int,
    within: frozenset[str] | None,
) -> list[Moment]:
    """The prompt's question answered part by part, in the order it asks.

    The instructions' domain narrows the videos, and so do the videos its
    context names (when the question matches in them); the last cited moment
    (of a folded transcript, else of the session) anchors follow-ups. A
    prompt that says to answer only from its context, whose context does not
    hold the answer, is answered with nothing.
    """
    if prompt.only_context and not holds(store, prompt):
        return []  # "answer only from the context", and it does not say
    allowed = domain(store, prompt.instructions)
    if allowed is not None:
        within = allowed if within is None else within & allowed
    named = frozenset(m.video.item_id for m in mentions(store, prompt.context))
    towards = named if within is None else named & within
    if towards and (
        not terms(prompt.question, question=True)
        or store.rank(prompt.question, within=towards)
    ):
        within = towards
    # A folded transcript holds turns newer than the session's.
    last = discussed(store, prompt.history) or _last_cited(session)
    parts = _CLAUSE.split(prompt.question)
    if len(parts) == 1:
        chosen = _answer(store, prompt.question, last, limit=limit, within=within)
    else:
        chosen = []
        for part in parts:
            found = [
                m
                for m in _answer(store, part, last, limit=limit, within=within)
                if m not in chosen
            ]
            chosen.extend(found[:1])
            last = found[0] if found else last
        chosen = chosen[:limit]
    return chosen


def _topical(
    store: KnowledgeStore,
    named: frozenset[str],
    within: frozenset[str] | None,
    content: str,
) -> tuple[list[Video], frozenset[str] | None, str]:
    """A topic's videos, the videos to search, and the question without topic words.

    "Which videos are about food?", "fishing boats": that topic's videos. An
    added video has no topic, so its words alone say whether it matches.
    """
    if not named:
        return [], within, content
    allowed = [v for v in store.videos if within is None or v.item_id in within]
    topical = [v for v in allowed if v.topics & named]
    searched = frozenset(v.item_id for v in allowed if v.topics & named or not v.topics)
    topic_words = r"\b(" + "|".join(TOPIC_WORDS) + r")\b"
    return topical, searched, re.sub(topic_words, " ", content, flags=re.IGNORECASE)


def _answer(
    store: KnowledgeStore,
    question: str,
    last: Moment | None,
    *,
    limit: int,
    within: frozenset[str] | None,
) -> list[Moment]:
    """The moments an answer to one question cites, in presentation order.

    Follow-ups continue from the `last` cited moment; overviews spread over the
    videos the question concerns (or all); "which videos" cites each relevant
    video once; "first" / "last" / "after X" / "before X" order by time within
    the right video; anything else leads with the best match.
    """
    if last is not None and (_FOLLOW_UP.search(question) or _GO_BACK.search(question)):
        back = bool(_GO_BACK.search(question))
        return _around(last, limit, after=not back) or [
            last.video.moments[0 if back else -1]
        ]
    content = _INTENT_WORDS.sub(" ", _GO_BACK.sub(" ", _FOLLOW_UP.sub(" ", question)))
    acting = _acting(store, question, within)
    if acting:  # "what does the chef inspect?": where the chef inspects
        return acting[:limit]
    anchor = _AFTER.search(content) or _BEFORE.search(content)
    if anchor is not None and not _OVERVIEW.search(question):
        found = store.rank(anchor.group(2), within=within)
        if found:
            pivot = found[0][1]
            after = anchor.group(1).lower() in ("after", "following")
            return _around(pivot, limit, after=after) or [pivot]
    named = topics(content)
    topical, within, content = _topical(store, named, within, content)
    ranked = store.rank(content, within=within)
    videos = [v for v in store.videos if within is None or v.item_id in within]
    if named and not ranked and not _FIRST.search(question):
        return [v.moments[v.highlight] for v in topical]
    if _OVERVIEW.search(question):
        if terms(content, question=True) and not ranked:
            return []  # an overview of something the store does not show
        concerned = {m.video.item_id for _, m in ranked}
        shown = [v for v in videos if v.item_id in concerned] or videos
        if len(shown) == 1:
            return _spread(shown[0].moments, limit)
        return [v.moments[v.highlight] for v in shown]
    if not _about_the_store(store, content):
        return []
    if _WHICH.search(question):
        per_video: dict[str, Moment] = {}
        for _, moment in ranked:
            per_video.setdefault(moment.video.item_id, moment)
        return [per_video[v.item_id] for v in videos if v.item_id in per_video]
    if not ranked and last is not None:
        ranked = store.rank(content, within=frozenset({last.video.item_id}))
    if not ranked:
        return []
    if _FIRST.search(question) or _LAST.search(question):
        video = ranked[0][1].video
        # Words that name the video ("the football final") say which video, not
        # which moment: moments whose own description matches the rest, if any.
        wanted = set(terms(content, question=True)) - video.title_words
        in_video = [m for _, m in ranked if m.video == video]
        described = [m for m in in_video if m.words & wanted] or in_video
        matching = sorted(described, key=lambda m: m.start_sec)
        return [matching[0] if _FIRST.search(question) else matching[-1]]
    # Lead with the best match; add others only as close and as complete.
    words = set(terms(_FOLLOW_UP.sub(" ", content), question=True))
    covered = len(words & set(ranked[0][1].counts))
    best = ranked[0][0]
    chosen = [
        m
        for score, m in ranked
        if score >= best / 2 and len(words & set(m.counts)) == covered
    ]
    if _IN_ORDER.search(question) and len({m.video for m in chosen}) == 1:
        chosen.sort(key=lambda m: m.start_sec)  # "in order": as the video tells it
    chosen = chosen[:limit]
    if _FOLLOW_UP.search(question):  # "…, and what happens next?" in one question
        top = chosen[0]
        chosen = [top, *top.video.moments[top.index + 1 : top.index + limit]]
    return chosen


def narrate(moments: list[Moment]) -> str:
    """The moments told as an answer tells them, without citation markers."""
    told = Style(bullets=False, limit=len(moments), timestamps=True)
    return _render(moments, told, markers=False)[0]


# What does the chef inspect (before buying)? What is the rider checking?
_DOES = re.compile(
    r"^\W*what\s+(?:(?:does|do|did)\s+(.+?)|(?:'s|is|are|was|were)\s+(.+?ing))"
    r"\s*(?=$|[?,.;]|\s(?:before|after|when|while|at|in|on|during|first|last|"
    r"then|and|with|from|to)\b)",
    re.IGNORECASE,
)


def _acting(
    store: KnowledgeStore, question: str, within: frozenset[str] | None
) -> list[Moment]:
    """The moments where the question's someone does its action, best first.

    "What does X <verb>?" asks for the moment where X does it: one whose words
    hold every word of "X <verb>" (or a synonym), wherever else the question
    points ("before buying", "at the start").
    """
    found = _DOES.search(question)
    if found is None:
        return []
    said = found.group(1) or found.group(2)
    groups = [set(terms(w, question=True)) for w in said.split()]
    groups = [g for g in groups if g]
    if len(groups) < 2:  # a subject and a verb, or nothing to go on
        return []
    return [
        m
        for _, m in store.rank(question, within=within)
        if all(g & set(m.counts) for g in groups)
    ]


def _render(
    moments: list[Moment], style: Style, *, markers: bool = True
) -> tuple[str, list[dict[str, Any]]]:
    text = style.prefix
    annotations: list[dict[str, Any]] = []
    previous: Moment | None = None
    for number, moment in enumerate(moments, 1):
        stamp = f" ({moment.time_range})" if style.timestamps else ""
        if style.bullets:
            head = f"- {moment.video.title}{stamp}: {moment.description} "
        elif previous is not None and previous.video == moment.video:
            when = "Then" if moment.start_sec >= previous.start_sec else "Earlier,"
            head = f"{when} {moment.description}{stamp} "
        else:
            head = f"In {moment.video.title}, {moment.description}{stamp} "
        marker = f"[{number}]" if markers else ""
        start = len(text) + len(head)
        annotations.append(moment.citation(start, start + len(marker) - 1))
        text = (text + head + marker).rstrip() + ("\n" if style.bullets else ". ")
        previous = moment
    return text.rstrip(), annotations


def compose(
    store: KnowledgeStore,
    question: str,
    session: Session | None,
    *,
    instructions: str | None,
    within: frozenset[str] | None,
) -> Answer:
    """The answer to the prompt `question`, as plain text with citations."""
    prompt = read(question, instructions)
    how = style(prompt.instructions)
    moments = _choose(store, prompt, session, how.limit, within)
    if not moments and prompt.only_context:
        return Answer(
            f"{how.prefix}I could not find anything about that in the context "
            "given, so I cannot answer from it.",
            [],
            (),
        )
    if not moments:
        titles = "; ".join(v.title for v in store.videos)
        return Answer(
            f"{how.prefix}I could not find anything about that in this knowledge "
            f"store. It holds: {titles}.",
            [],
            (),
        )
    text, annotations = _render(moments, how)
    return Answer(text, annotations, tuple(moments))


def pieces(text: str, *, json_text: bool = False) -> list[str]:
    """Token-sized delta pieces that concatenate back to `text`."""
    if json_text:
        return [text[i : i + 6] for i in range(0, len(text), 6)]
    return _PIECES.findall(text)
