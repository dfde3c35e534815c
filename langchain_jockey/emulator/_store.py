"""The built-in demo knowledge stores: invented videos with timestamped moments.

Ids use the documented prefixes (`ks_`, `ksi_`, `ksic_`, docs/protocol.md) in the
UUIDv7-like shape the API returns. Retrieval is BM25 over the moments'
descriptions (and, weighted less, their video's title), after stop words are
dropped, words lightly stemmed and a small synonym map for the demo's domains
applied (score/goal, crash/fall, done/hollow, …): the same question over the
same store always ranks the same moments the same way. The videos and their
moments are data, in `catalogue.json` (packaged with the emulator).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "DEMO_STORE_ID",
    "KITCHEN_STORE_ID",
    "STORES",
    "TOPIC_WORDS",
    "KnowledgeStore",
    "Moment",
    "Video",
    "build_video",
    "terms",
    "tokens",
    "topics",
]

DEMO_STORE_ID = "ks_0195d0e0-0000-7000-8000-0000000000d0"
KITCHEN_STORE_ID = "ks_0195d0e0-0000-7000-8000-0000000000d1"
_CDN = "https://cdn.jockey-emulator.invalid"  # .invalid: never resolvable
_CATALOGUE = "catalogue.json"  # the stores' videos and moments, invented

_STOPWORDS = frozenset(
    """a an and any are as at be been by can could did do does for from has have
    how i in into is it its me of on or our show tell that the their them then
    there these they this to was were what when where which who why will with
    would you your about please give find video videos moment moments happen
    happens happened store knowledge collection off up out over down anyone
    someone anything something get gets got see seen look looks like make makes
    made kind sort thing things way doing much many long come comes came go goes
    went all any each every there""".split()  # noqa: SIM905 - a word list reads best as words
)


# Words a viewer would use for what the demo videos show, mapped (after
# stemming) to the words the descriptions use. Only questions are mapped, so
# "the baker scores the loaf" never answers "who scores?".
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "score": ("goal",),
    "scor": ("goal",),
    "scorer": ("goal",),
    "equalis": ("equalis", "goal"),
    "won": ("winn",),
    "winner": ("winn",),
    "crash": ("crash",),
    "fall": ("crash",),
    "fell": ("crash",),
    "tumbl": ("crash",),
    "wipeout": ("crash",),
    "play": ("football",),
    "game": ("football",),
    "match": ("football",),
    "soccer": ("football",),
    "done": ("hollow",),
    "readi": ("hollow",),
    "ready": ("hollow",),
    "ship": ("boat",),
    "vessel": ("boat",),
    "trawler": ("boat",),
    "goalkeeper": ("keeper",),
    "goali": ("keeper",),
    "goalie": ("keeper",),
    "loaf": ("loaf", "bread"),
    "dough": ("dough", "bread"),
    "cyclist": ("rider",),
    "biker": ("rider",),
    "cycl": ("rider",),
    "river": ("stream",),
    "cost": ("price",),
    "pric": ("price",),
    "sold": ("bid", "price", "buy"),
    "sell": ("bid", "price", "buy"),
    "mist": ("fog",),
    "seafood": ("fish", "crab", "lobster"),
    "cup": ("trophy",),
    "whistl": ("whistl",),
    "launch": ("launch",),
    "rescu": ("rescu", "casualty"),
    "back": ("back", "return"),
    "catch": ("catch", "mackerel"),
    "inspect": ("inspect", "check"),
    "examin": ("inspect", "check"),
}
# Topic words: a question about "food" or "sport" means the videos of that topic.
TOPIC_WORDS = {
    "food": "food",
    "cook": "food",
    "cooking": "food",
    "eat": "food",
    "sport": "sports",
    "sports": "sports",
    "sea": "sea",
    "ocean": "sea",
    "maritime": "sea",
}
# Words of one topic's videos: a question about fishing never cites the bike ride.
# Unlike TOPIC_WORDS, they stay in the question (the descriptions use them).
_TOPIC_HINTS = {
    "fishing": "sea",
    "fisherman": "sea",
    "fishermen": "sea",
    "football": "sports",
    "soccer": "sports",
    "bread": "food",
    "sourdough": "food",
    "baking": "food",
    "baker": "food",
    "bike": "sports",
    "cycling": "sports",
}


def topics(text: str) -> frozenset[str]:
    """The topics ("sea", "sports", "food") that words of `text` name."""
    words = re.findall(r"[a-z]+", text.lower())
    table = {**TOPIC_WORDS, **_TOPIC_HINTS}
    return frozenset(table[w] for w in words if w in table)


def _stem(word: str) -> str:
    """A light stemmer: "saves", "save" and "saved" all become "sav"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


def terms(text: str, *, question: bool = False) -> list[str]:
    """The content words of `text`, in order: lowercased and stemmed.

    A `question`'s words are also mapped to the words the descriptions use.
    """
    out: list[str] = []
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        if word in _STOPWORDS:
            continue
        stem = _stem(word)
        if question:
            out.extend(_SYNONYMS.get(stem, _SYNONYMS.get(word, (stem,))))
        else:
            out.append(stem)
    return out


def tokens(text: str) -> frozenset[str]:
    """The set of `terms` of `text`."""
    return frozenset(terms(text))


@dataclass(frozen=True)
class Moment:
    """A described time range of a video."""

    video: Video
    index: int
    start_sec: float
    end_sec: float
    description: str
    words: frozenset[str] = field(compare=False, repr=False)
    counts: Counter[str] = field(compare=False, repr=False, default_factory=Counter)
    said: str | None = field(default=None, compare=False, repr=False)
    """What is said aloud in the moment (an added video's transcript line)."""

    @property
    def time_range(self) -> str:
        """`mm:ss-mm:ss`, with an en dash."""
        return f"{_mmss(self.start_sec)}\u2013{_mmss(self.end_sec)}"

    def citation(self, start: int, end_inclusive: int) -> dict[str, object]:
        """A `video_citation` annotation for a marker at `[start, end_inclusive]`."""
        video = self.video
        return {
            "type": "video_citation",
            "start_index": start,
            "end_index": end_inclusive,
            "item_id": video.item_id,
            "start_sec": self.start_sec,
            "end_sec": self.end_sec,
            "title": video.title,
            "thumbnail_url": f"{_CDN}/{video.item_id}/thumb_{int(self.start_sec)}.jpg",
            "hls_url": f"{_CDN}/{video.item_id}/index.m3u8?start={self.start_sec:g}",
        }


def _mmss(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60:02d}:{whole % 60:02d}"


@dataclass(frozen=True)
class Video:
    """A video item (`ksi_…`) of a knowledge store."""

    item_id: str
    title: str
    duration: float
    moments: tuple[Moment, ...] = field(default=(), compare=False, repr=False)
    title_words: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    topics: frozenset[str] = field(default=frozenset(), compare=False, repr=False)
    """Domains an instruction can narrow to ("sports", "food", "sea")."""
    highlight: int = field(default=0, compare=False, repr=False)
    """The moment an overview of several videos cites for this one."""
    metadata: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """An added video's item metadata, as given; `None` for a demo video."""


@dataclass(frozen=True)
class KnowledgeStore:
    """A knowledge store (`ks_…`): videos and item collections (`ksic_…`)."""

    store_id: str
    name: str
    videos: tuple[Video, ...]
    collections: dict[str, tuple[str, ...]]

    def video(self, item_id: str) -> Video | None:
        """The video with this item id, if the store has it."""
        return next((v for v in self.videos if v.item_id == item_id), None)

    def search(
        self, question: str, *, limit: int, within: frozenset[str] | None = None
    ) -> list[Moment]:
        """The best-matching moments, best first (ties: store order, then time)."""
        ranked = self.rank(question, within=within)
        return [moment for _, moment in ranked[:limit]]

    def rank(
        self, question: str, *, within: frozenset[str] | None = None
    ) -> list[tuple[float, Moment]]:
        """(BM25 score, moment) of every moment that matches, best first.

        Moments of the topic the question names (`topics`) come first.
        """
        words = terms(question, question=True)
        if not words:
            return []
        moments = [
            m
            for v in self.videos
            if within is None or v.item_id in within
            for m in v.moments
        ]
        everything = [m for v in self.videos for m in v.moments]
        average = sum(sum(m.counts.values()) for m in everything) / len(everything)
        order = {v.item_id: i for i, v in enumerate(self.videos)}
        scored = []
        for moment in moments:
            score = 0.0
            for word in set(words):
                df = sum(1 for m in everything if word in m.counts)
                tf = moment.counts.get(word, 0)
                if not tf:
                    continue
                idf = math.log(1 + (len(everything) - df + 0.5) / (df + 0.5))
                size = sum(moment.counts.values())
                score += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * size / average))
            if score > 0:
                scored.append((score, moment))
        named = topics(question)
        scored.sort(
            key=lambda s: (
                bool(named) and not s[1].video.topics & named,
                -s[0],
                order[s[1].video.item_id],
                s[1].index,
            )
        )
        return scored


def build_video(entry: dict[str, Any]) -> Video:
    """A `Video` from a catalogue entry: ids, title, duration, topics, moments.

    Each moment is a line `start-end description` (seconds). An added video's
    entry also has its item `metadata` and, for each moment, what is `said`
    in it (`None` where nothing is).
    """
    title, duration = entry["title"], entry["duration"]
    video = Video(
        entry["item_id"],
        title,
        duration,
        title_words=tokens(title),
        topics=frozenset(entry["topics"]),
        highlight=entry["highlight"],
        metadata=entry.get("metadata"),
    )
    said = entry.get("said") or [None] * len(entry["moments"])
    built = []
    for index, (line, spoken) in enumerate(zip(entry["moments"], said, strict=True)):
        span, description = line.split(" ", 1)
        start, end = (float(x) for x in span.split("-"))
        if not 0 <= start < end <= duration:
            msg = f"bad moment {span} in {title}"
            raise ValueError(msg)
        # The title counts once per moment: it names what every moment is of.
        counts = Counter(terms(description)) + Counter(set(terms(title)))
        built.append(
            Moment(
                video,
                index,
                start,
                end,
                description,
                tokens(description),
                counts,
                spoken,
            )
        )
    object.__setattr__(video, "moments", tuple(built))
    return video


def _load() -> dict[str, KnowledgeStore]:
    """The stores of `catalogue.json`, next to this module (packaged with it)."""
    data = json.loads(resources.files(__package__).joinpath(_CATALOGUE).read_text())
    videos = {entry["item_id"]: build_video(entry) for entry in data["videos"]}
    return {
        store["store_id"]: KnowledgeStore(
            store["store_id"],
            store["name"],
            tuple(videos[item] for item in store["videos"]),
            {c: tuple(items) for c, items in store["collections"].items()},
        )
        for store in data["stores"]
    }


STORES: dict[str, KnowledgeStore] = _load()
