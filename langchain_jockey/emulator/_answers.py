"""Composing Jockey's answers from the demo store, deterministically.

The same request and session state always give the same text. What the
emulator does, so that tests and demos can rely on it:

- **Retrieval**: the moments whose descriptions best match the question's
  words (titles count a little), at most 3 (see instructions below).
- **Overview** questions ("summarise", "overview", "what videos"): spread
  moments of the video named in the question, else the opening of every video.
- **Follow-ups** in a session ("what happens next?", "and then?", "after
  that"): the moments after the last one cited in the previous turn, in the
  same video ("before that" / "earlier" go back). A follow-up that matches
  nothing by itself searches the video discussed last.
- **Instructions** change the answer observably: "bullet" gives a bulleted
  list; "brief" / "short" / "concise" / "one sentence" cite one moment;
  "detail" / "thorough" cite up to five; "no timestamps" drops the mm:ss ranges;
  `Start your answer with "X"` puts X first (citations shift with it).
- **Citations**: every cited moment gets a `[N]` marker, numbered in order of
  appearance, and a `video_citation` whose inclusive `end_index` points at the
  `]` (code point offsets).
- Nothing matches: a sentence that says so and lists the store's videos.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from langchain_jockey.emulator._store import KnowledgeStore, Moment, tokens

__all__ = ["Answer", "Session", "Turn", "compose", "pieces"]

_FOLLOW_UP = re.compile(
    r"\b(what happens next|happens next|what next|and then|then what|after that|"
    r"afterwards|next\?|continue|go on)\b",
    re.IGNORECASE,
)
_GO_BACK = re.compile(
    r"\b(before that|earlier|previously|just before)\b", re.IGNORECASE
)
_OVERVIEW = re.compile(
    r"\b(summar\w*|overview|what videos|which videos|what is in the|list the videos)",
    re.IGNORECASE,
)
_PREFIX = re.compile(
    r'start (?:your answer |the answer )?with "([^"]+)"', re.IGNORECASE
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


@dataclass(frozen=True)
class _Style:
    bullets: bool
    limit: int
    timestamps: bool
    prefix: str = ""


def _style(instructions: str | None) -> _Style:
    text = (instructions or "").lower()
    limit = 3
    if re.search(r"\b(brief|short|concise|one sentence|tl;dr)\b", text):
        limit = 1
    elif re.search(r"\b(detail\w*|thorough\w*|everything)\b", text):
        limit = 5
    prefix = _PREFIX.search(instructions or "")
    return _Style(
        bullets="bullet" in text,
        limit=limit,
        timestamps=not re.search(r"\b(no|without) timestamps?\b", text),
        prefix=prefix.group(1) + " " if prefix else "",
    )


def _last_cited(session: Session | None) -> Moment | None:
    if session is None:
        return None
    for turn in reversed(session.turns):
        if turn.cited:
            return turn.cited[-1]
    return None


def select(
    store: KnowledgeStore,
    question: str,
    session: Session | None,
    *,
    limit: int,
    within: frozenset[str] | None,
) -> list[Moment]:
    """The moments an answer to `question` cites, in presentation order."""
    last = _last_cited(session)
    if last is not None and (_FOLLOW_UP.search(question) or _GO_BACK.search(question)):
        moments = last.video.moments
        if _GO_BACK.search(question):
            return list(moments[max(0, last.index - limit) : last.index]) or [
                moments[0]
            ]
        following = list(moments[last.index + 1 : last.index + 1 + limit])
        return following or [moments[-1]]
    if _OVERVIEW.search(question):
        named = store.search(question, limit=1, within=within)
        if named and named[0].video.title_words & tokens(question):
            video = named[0].video
            step = max(1, len(video.moments) // max(1, limit))
            return list(video.moments[::step][:limit])
        videos = [v for v in store.videos if within is None or v.item_id in within]
        return [v.moments[0] for v in videos][: max(limit, len(videos))]
    found = store.search(question, limit=limit, within=within)
    if not found and last is not None:
        found = store.search(
            question, limit=limit, within=frozenset({last.video.item_id})
        )
    order = {v.item_id: i for i, v in enumerate(store.videos)}
    return sorted(found, key=lambda m: (order[m.video.item_id], m.start_sec))


def _render(moments: list[Moment], style: _Style) -> tuple[str, list[dict[str, Any]]]:
    text = style.prefix
    annotations: list[dict[str, Any]] = []
    previous: Moment | None = None
    for number, moment in enumerate(moments, 1):
        stamp = f" ({moment.time_range})" if style.timestamps else ""
        if style.bullets:
            head = f"- {moment.video.title}{stamp}: {moment.description} "
        elif previous is not None and previous.video == moment.video:
            head = f"Then {moment.description}{stamp} "
        else:
            head = f"In {moment.video.title}, {moment.description}{stamp} "
        marker = f"[{number}]"
        start = len(text) + len(head)
        annotations.append(moment.citation(start, start + len(marker) - 1))
        text += head + marker + ("\n" if style.bullets else ". ")
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
    """The answer to `question`, as plain text with citations."""
    style = _style(instructions)
    moments = select(store, question, session, limit=style.limit, within=within)
    if not moments:
        titles = "; ".join(v.title for v in store.videos)
        return Answer(
            f"{style.prefix}I could not find anything about that in this knowledge "
            f"store. It holds: {titles}.",
            [],
            (),
        )
    text, annotations = _render(moments, style)
    return Answer(text, annotations, tuple(moments))


def pieces(text: str, *, json_text: bool = False) -> list[str]:
    """Token-sized delta pieces that concatenate back to `text`."""
    if json_text:
        return [text[i : i + 6] for i in range(0, len(text), 6)]
    return _PIECES.findall(text)
