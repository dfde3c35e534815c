"""The built-in demo knowledge stores: invented videos with timestamped moments.

Ids use the documented prefixes (`ks_`, `ksi_`, `ksic_`, docs/protocol.md) in the
UUIDv7-like shape the API returns. Retrieval is BM25 over the moments'
descriptions (and, weighted less, their video's title), after stop words are
dropped, words lightly stemmed and a small synonym map for the demo's domains
applied (score/goal, crash/fall, done/hollow, …): the same question over the
same store always ranks the same moments the same way.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

__all__ = [
    "DEMO_STORE_ID",
    "KITCHEN_STORE_ID",
    "STORES",
    "TOPIC_WORDS",
    "KnowledgeStore",
    "Moment",
    "Video",
    "terms",
    "tokens",
]

DEMO_STORE_ID = "ks_0195d0e0-0000-7000-8000-0000000000d0"
KITCHEN_STORE_ID = "ks_0195d0e0-0000-7000-8000-0000000000d1"
_CDN = "https://cdn.jockey-emulator.invalid"  # .invalid: never resolvable

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
        """(BM25 score, moment) of every moment that matches, best first."""
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
        scored.sort(key=lambda s: (-s[0], order[s[1].video.item_id], s[1].index))
        return scored


def _video(
    item_id: str,
    title: str,
    duration: float,
    moments: str,
    *,
    topics: str = "",
    highlight: int = 0,
) -> Video:
    video = Video(
        item_id,
        title,
        duration,
        title_words=tokens(title),
        topics=frozenset(topics.split()),
        highlight=highlight,
    )
    built = []
    for index, line in enumerate(m for m in moments.strip().splitlines() if m.strip()):
        span, description = line.strip().split(" ", 1)
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
                description.strip(),
                tokens(description),
                counts,
            )
        )
    object.__setattr__(video, "moments", tuple(built))
    return video


def _id(prefix: str, tail: str) -> str:
    return f"{prefix}_0195d0e0-0000-7000-8000-0000000000{tail}"


_HARBOUR = _video(
    _id("ksi", "a1"),
    "Harbour at dawn (timelapse)",
    240,
    """
    0-20 the harbour lies dark and still while gulls circle the breakwater
    20-42 deck lights come on as crews load nets and ice onto the fishing boats
    42-75 the fishing boats leave the harbour just before dawn in a long line
    75-90 fog rolls in from the sea and hides the outer buoys
    90-115 the lighthouse beam sweeps through the thinning fog
    115-130 the fog lifts over the lighthouse and the sky turns orange
    130-150 a ferry arrives and moors at the north quay
    150-170 kayakers paddle past the moored yachts
    170-190 the tide goes out and exposes the slipway
    190-205 the harbour master raises the weather flag for a strong wind
    205-225 the first fishing boats return heavy with the catch
    225-240 gulls crowd the returning boats as the sun rises over the town
    """,
    topics="sea",
    highlight=2,
)
_MARKET = _video(
    _id("ksi", "a2"),
    "Fish market walkthrough",
    300,
    """
    0-25 the fish market opens its shutters at six in the morning
    25-50 traders hose down the stone floor and set out crushed ice
    50-80 an auctioneer rings a bell and starts the morning auction
    80-110 buyers bid for boxes of cod and haddock with hand signals
    110-140 a chef inspects the gills of a large turbot before buying it
    140-165 a trader fillets a salmon in under a minute
    165-190 the same fishing boats unload crates of mackerel at the market quay
    190-215 crates of mackerel reach the stalls and are priced on chalkboards
    215-240 a family buys crab and asks how to cook it
    240-260 the price of lobster is written up and shoppers gasp
    260-280 traders pack unsold fish into ice for the restaurants
    280-300 the market closes and the floor is washed again
    """,
    topics="sea food",
    highlight=2,
)
_FOOTBALL = _video(
    _id("ksi", "a3"),
    "Under-12 football final",
    540,
    """
    0-30 the two teams walk out and line up for the anthem
    30-70 the red team presses high and wins an early corner kick
    70-95 a goal comes right after the corner kick with a header at the near post
    95-140 the blue team equalises with a long shot into the top corner
    140-185 the referee shows a yellow card for a late tackle
    185-230 the red keeper Zoe saves a penalty by diving to her left
    230-270 half time talk in the red team huddle about keeping the shape
    270-320 a substitute on the blue team hits the crossbar from a free kick
    320-380 a counter attack ends with the red striker scoring the winning goal
    380-430 the blue team pushes forward and the red defenders clear off the line
    430-500 the final whistle blows and the red team celebrates
    500-540 the captains lift the trophy and both teams shake hands
    """,
    topics="sports",
    highlight=2,
)
_BREAD = _video(
    _id("ksi", "a4"),
    "Sourdough bread masterclass",
    420,
    """
    0-30 the baker introduces the sourdough starter and its feeding schedule
    30-65 flour water and starter are mixed into a shaggy dough
    65-100 the dough rests for the autolyse while the baker explains gluten
    100-140 salt is added and the dough is stretched and folded
    140-180 the dough rises in a glass bowl and doubles in size
    180-215 the baker shapes the dough into a tight round loaf
    215-250 the loaf proves overnight in a floured basket in the fridge
    250-280 the oven and a cast iron pot are preheated very hot
    280-310 the baker scores the loaf with a razor to control the rise
    310-350 the bread bakes with the lid on then with the lid off to brown the crust
    350-390 the baker taps the base of the loaf to check it sounds hollow
    390-420 the loaf is sliced to show an open crumb
    """,
    topics="food",
    highlight=5,
)
_BIKE = _video(
    _id("ksi", "a5"),
    "Mountain bike trail: Ridge Loop",
    360,
    """
    0-25 the rider checks tyre pressure and brakes at the trailhead
    25-60 a steady climb on a gravel fire road through pine forest
    60-85 the rider stops at a viewpoint above the valley
    85-115 the trail turns to singletrack with roots and rocks
    115-140 a steep rock garden descent taken slowly
    140-165 the rider crashes on a wet root but gets up unhurt
    165-195 a fast section of berms and small jumps
    195-220 the rider crosses a stream on a narrow wooden bridge
    220-255 a long technical climb up switchbacks
    255-290 the ridge top with views of the harbour town below
    290-330 a flowing descent back into the forest
    330-360 the rider returns to the car park and washes the bike
    """,
    topics="sports",
    highlight=5,
)
_LIFEBOAT = _video(
    _id("ksi", "a6"),
    "Lifeboat rescue drill",
    480,
    """
    0-35 the pager sounds and volunteers run to the lifeboat station
    35-75 the crew pulls on dry suits and helmets in the changing room
    75-110 the lifeboat launches down the slipway into the harbour
    110-150 the lifeboat races past the lighthouse into open water
    150-190 the crew searches for a drifting dummy in the swell
    190-230 the helmsman spots the casualty and steers alongside
    230-275 the crew hauls the casualty on board with a rescue sling
    275-320 first aid is given on deck while the boat heads home
    320-360 a helicopter flies overhead to practise a winch transfer
    360-400 the lifeboat is recovered up the slipway by a winch
    400-440 the crew washes the boat down with fresh water
    440-480 the coxswain debriefs the crew over tea
    """,
    topics="sea",
    highlight=2,
)
_KNIVES = _video(
    _id("ksi", "b1"),
    "Knife skills basics",
    200,
    """
    0-30 the chef shows how to hold a chef's knife with a pinch grip
    30-70 an onion is halved and diced without slipping
    70-110 carrots are cut into thin batons
    110-150 herbs are chopped with a rocking motion
    150-200 the chef hones the knife on a steel
    """,
    topics="food",
    highlight=1,
)
_SAUCE = _video(
    _id("ksi", "b2"),
    "Tomato sauce from scratch",
    260,
    """
    0-40 tomatoes are scored and blanched in boiling water
    40-90 the skins slip off and the tomatoes are chopped
    90-140 garlic is softened in olive oil
    140-200 the sauce simmers and thickens for forty minutes
    200-260 basil is torn in and the sauce is tasted for salt
    """,
    topics="food",
    highlight=3,
)

STORES: dict[str, KnowledgeStore] = {
    DEMO_STORE_ID: KnowledgeStore(
        DEMO_STORE_ID,
        "Demo: harbour town",
        (_HARBOUR, _MARKET, _FOOTBALL, _BREAD, _BIKE, _LIFEBOAT),
        {
            _id("ksic", "c1"): (_HARBOUR.item_id, _MARKET.item_id, _LIFEBOAT.item_id),
            _id("ksic", "c2"): (_FOOTBALL.item_id, _BIKE.item_id),
        },
    ),
    KITCHEN_STORE_ID: KnowledgeStore(
        KITCHEN_STORE_ID,
        "Demo: kitchen",
        (_KNIVES, _SAUCE),
        {_id("ksic", "c3"): (_KNIVES.item_id, _SAUCE.item_id)},
    ),
}
