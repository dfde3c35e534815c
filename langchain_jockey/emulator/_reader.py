"""Reading a moment for one field: the emulator's stand-in for watching it.

Real Jockey watches the video. The emulator has words only: a moment's
description (for an added video, a sentence of its `description` or
`transcript`) and its video's title. A structured field is answered from
them as a reader would, by the field's name and description (`Ask`):

- **which moment**: of the moments an answer cites, those that share words
  with the field, most first, until one answers it (`candidates`); the first
  moment when none does;
- **a phrase** (`text`), the shortest that answers: a *name* (a capitalised
  word not starting the sentence, or starting it and no common word; in a
  title only next to the field's own word: "trail: Ridge Loop"); *who* (a
  name, else the person the moment names: "a chef"); *where* (the place after
  at/in/on/into…, not a time); *when* (a time phrase: "just before dawn", "at
  six in the morning", else the moment's time range); *why* ("to control
  the rise", "because …"); *how* ("by diving to her left", "with a razor");
  a *colour*, *flavour*, *direction*, *size* or *weather* word, next to the
  field's own word when it names one ("cake_flavor": the word before "cake");
  else the object of the field's verb ("what the chef inspects": "the gills
  of a large turbot"; "it" is the thing before it); the title, item id, URL
  and time range by those names; `description` / "what happens" the whole
  moment;
- **a number** (`number`): `start_sec` / `end_sec` / `duration` the moment's
  times; otherwise a number written in digits, words ("seven", "forty") or as
  an ordinal ("seventh"), next to the field's word ("seven candles" for
  `candles`; a field named only `count` or `number` uses the question's);
- **true or false** (`supports`): whether every word of the field (or, for a
  bare `answer`, of the question) is in the moment, not negated ("unhurt",
  "without");
- **an option** (`option`): the option of an enum the moment names, nearest
  the field's word.

What none of these finds is `None`: not found. A value never comes from a
part of the moment the field does not ask about (a number next to another
word, a colour of another thing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_jockey.emulator._store import Moment, terms

__all__ = [
    "Ask",
    "candidates",
    "keywords",
    "number",
    "option",
    "supports",
    "text",
    "texts",
]


def _set(text: str) -> frozenset[str]:
    """The words of `text` (a word list reads best as words)."""
    return frozenset(text.split())


def _list(text: str) -> list[str]:
    """The words of `text`, in order."""
    return text.split()


_TOKEN = re.compile(
    r"[£$€]\d+(?:\.\d+)?|\d+(?:st|nd|rd|th)\b|\d+(?:\.\d+)?"
    r"|[A-Za-z]+(?:['\u2019][A-Za-z]+)?|[,;:()\u2013\u2014]"
)
_DET = _set(
    "a an the this that these those his her their its our my your some both each "
    "every another no"
)
_PREP = _set(
    "in at on into onto to from near over under through across past along above "
    "below beside behind inside outside around off by with for of before after "
    "during until since about without toward towards down up alongside"
)
_CONJ = _set(
    "and but or then while as so because when where how what which who whom "
    "whose why if than"
)
_PUNCT = frozenset(",;:()\u2013\u2014")
_BREAK = _PREP | _CONJ | _PUNCT
_PARTICLES = _set("out up down off on in over back away")
_PLACE_PREP = _set(
    "in at on into onto from near over under through across past along above "
    "below beside behind inside outside around down up alongside"
)
_NOT_PLACES = _set(
    "line lines size order row rows way hurry turn pairs silence half minute "
    "minutes time unhurt"
)
_CLAUSE_END = _PUNCT | {"and", "but", "while"}
_MODIFIERS = _set("just right early late half shortly soon")
_OBJECTS = _set("her him them me us it")
# After a word joined by "and", these show it acts: "and asks how", "and set out".
_VERB_NEXT = _DET | _CONJ - {"and", "or"} | _set("out up down off over back away")
_PRONOUNS = _set("it them this that one these those")
_NEGATION = _set("no not never without nobody nothing none")
_PEOPLE = _set(
    "person people man men woman women boy boys girl girls child children kid "
    "kids baby babies mum mom dad father mother parent parents family families "
    "friend friends guest guests host hosts teacher teachers student students "
    "pupil pupils player players team teams keeper keepers goalkeeper striker "
    "strikers defender defenders captain captains referee coach substitute fan "
    "fans crowd rider riders cyclist cyclists runner runners driver drivers "
    "pilot chef chefs cook cooks baker bakers trader traders buyer buyers "
    "seller sellers shopper shoppers customer customers auctioneer fisherman "
    "fishermen crew crews sailor sailors helmsman coxswain volunteer volunteers "
    "doctor nurse officer farmer worker workers kayaker kayakers master grandma "
    "grandpa grandmother grandfather uncle aunt brother sister son daughter "
    "bride groom singer dancer dancers speaker presenter narrator audience"
)
_TIME_WORDS = _set(
    "morning afternoon evening night dawn dusk sunrise sunset noon midday "
    "midnight daybreak o'clock am pm minute minutes hour hours second seconds "
    "day days week weeks weekend month months year years time overnight today "
    "tonight tomorrow yesterday monday tuesday wednesday thursday friday "
    "saturday sunday spring summer autumn winter"
)
_NOT_NAMES = _set(
    "i everyone everybody someone somebody nobody anyone all both each one two "
    "three first next finally later meanwhile afterwards suddenly today tonight "
    "yesterday tomorrow happy welcome hello hi hey ok okay yes no oh well look "
    "let's lets please thanks thank great good now after before when while if "
    "as at in on from to with by for of during and but or so because here there "
    "then this that these those it its we you they he she his her our their the "
    "a an some monday tuesday wednesday thursday friday saturday sunday january "
    "february march april may june july august september october november "
    "december"
)
_ONES = _list(
    "zero one two three four five six seven eight nine ten eleven twelve "
    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"
)
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70}
_TENS |= {"eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12}
_ORDINALS = _list(
    "zeroth first second third fourth fifth sixth seventh eighth ninth tenth "
    "eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth "
    "eighteenth nineteenth twentieth"
)
_NUMBERS = {w: i for i, w in enumerate(_ONES)} | _TENS
_NUMBERS |= {w: i for i, w in enumerate(_ORDINALS) if i > 2}  # not "first", "second"
_LEXICONS = {
    "colour": _set(
        "red orange yellow green blue purple pink brown black white grey gray gold "
        "golden silver navy crimson turquoise"
    ),
    "flavour": _set(
        "chocolate vanilla strawberry lemon lime orange raspberry banana carrot "
        "coffee caramel coconut mint cherry apple almond hazelnut cinnamon ginger "
        "honey pistachio blueberry cheese fruit"
    ),
    "direction": _set(
        "left right up down north south east west forward forwards backward "
        "backwards clockwise anticlockwise"
    ),
    "size": _set("small large big tiny huge medium little tall giant"),
    "weather": _set(
        "sunny rainy rain windy wind foggy fog misty mist cloudy snow snowy stormy "
        "storm clear"
    ),
}
_LEXICON_OF = {
    "colour": "colour", "color": "colour", "colours": "colour", "colors": "colour",
    "shade": "colour", "flavour": "flavour", "flavor": "flavour",
    "flavours": "flavour", "flavors": "flavour", "taste": "flavour",
    "direction": "direction", "side": "direction", "size": "size",
    "weather": "weather",
}  # fmt: skip
# Field words that say which kind of answer, in the order they are tried.
_KINDS = (
    ("id", frozenset({"id", "ids"})),
    ("url", frozenset({"url", "link", "href", "uri", "hls"})),
    ("thumbnail", frozenset({"thumbnail", "thumb", "image", "poster"})),
    ("range", frozenset({"timestamp", "timestamps", "timecode", "range", "span"})),
    ("summary", _set(
        "summary answer explanation explain response reply notes note comment "
        "comments overview narrative reasoning"
    )),
    ("keywords", _set("tags tag keywords keyword labels label topics")),
    ("what", _set(
        "description describe happens happening happened event events action "
        "activity caption moment moments scene scenes step steps highlight "
        "highlights do doing"
    )),
    ("title", frozenset({"title", "titles", "headline"})),
    ("name", frozenset({"name", "names", "called", "nickname"})),
    ("who", frozenset({"who", "person", "people", "whom"})),
    ("where", _set("where place location venue spot site setting area")),
    ("when", frozenset({"when", "time", "hour", "start", "end", "begin"})),
    ("why", frozenset({"why", "reason", "purpose", "cause", "motive", "because"})),
    ("tool", frozenset({"tool", "tools", "instrument", "utensil", "equipment"})),
    ("how", frozenset({"how", "method", "manner", "technique", "means"})),
)  # fmt: skip
_TITLE_HINTS = _set("video videos clip clips film films source sources")
_NOT_ROLES = _set(
    "water weather number order corner paper power river center centre letter "
    "winter summer after under over answer other flavor colour color"
)
_GENERIC = _set(
    "name names title id url link time timestamp start end sec secs second "
    "seconds begin stop when where who why how what which description summary "
    "answer text value result number count total num many much amount is has "
    "was did does do are were can should true false whether yes no flag boolean "
    "field item thing object the a an of in on at to for video clip moment "
    "found first"
)
# A field's word and the words that show it in a moment ("age": "seventh birthday").
_RELATED = {
    "age": ("birthday", "old", "aged", "under", "turn", "year"),
    "price": ("pound", "dollar", "euro", "cost", "kilo", "price"),
    "cost": ("pound", "dollar", "euro", "cost", "kilo", "price"),
    "hour": ("o'clock", "morning", "afternoon", "evening", "night", "am", "pm"),
}


@dataclass(frozen=True)
class _Words:
    """A text as tokens: as written, lowercased, and stemmed ("" for a stop word)."""

    raw: tuple[str, ...]
    low: tuple[str, ...]
    stem: tuple[str, ...]
    title: bool  # a title: its first word is capitalised by form, not as a name


@lru_cache(maxsize=4096)
def _words(text: str, *, title: bool = False) -> _Words:
    raw = tuple(_TOKEN.findall(text))
    low = tuple(w.lower().replace("\u2019", "'") for w in raw)
    stem = tuple(
        next(iter(terms(w.removesuffix("'s"))), "") if w[0].isalpha() else w
        for w in low
    )
    return _Words(raw, low, stem, title)


def _sentence(moment: Moment) -> _Words:
    """The moment's words; a video added with only a file name has its title."""
    return _words(moment.description, title=moment.description == moment.video.title)


def _split(name: str) -> list[str]:
    """`childName` / `child_name` / `child-name` → `["child", "name"]`."""
    name = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return re.findall(r"[a-z]+|\d+", name.lower())


def _groups(words: list[str]) -> tuple[frozenset[str], ...]:
    """Each content word's stem with the stems a question maps it to ("fall": crash)."""
    out = []
    for word in words:
        group = set(terms(word)) | set(terms(word, question=True))
        if group:
            out.append(frozenset(group))
    return tuple(out)


@dataclass(frozen=True)
class Ask:
    """What one field asks: its kind of answer and its own words."""

    name: str
    kind: str
    groups: tuple[frozenset[str], ...]
    """The field's own (not generic) words, each with its synonyms."""
    lexicon: str | None
    heads: frozenset[str]
    """Stems of the field's words that are no kind word ("cake" of `cake_flavor`)."""
    said: tuple[frozenset[str], ...]
    """The question's words, for a field without words of its own."""
    bounds: frozenset[str]
    """"start", "end" or "duration", when the field asks for the moment's times."""
    verbs: frozenset[str]
    """Stems of the field's verbs ("buys" of "the fish the chef buys")."""
    said_verbs: frozenset[str]
    """Stems of the question's verbs."""

    @classmethod
    def of(cls, name: str, description: Any, question: str = "") -> Ask:
        """The ask of a field called `name`, with its schema's `description`."""
        told = description if isinstance(description, str) else ""
        return _ask(name, told, question)

    @property
    def words(self) -> frozenset[str]:
        """Every stem of the field's own words and their synonyms."""
        return frozenset().union(*self.groups)

    @property
    def asked(self) -> tuple[frozenset[str], ...]:
        """The field's words, or the question's for a field without its own."""
        return self.groups or self.said

    @property
    def label(self) -> str:
        """The field's name as words, for "not found: cake flavor"."""
        return " ".join(_split(self.name)) or "the answer"


@lru_cache(maxsize=256)
def _ask(name: str, description: str, question: str) -> Ask:
    """`Ask.of`, once per field of a schema and question (schemas repeat fields)."""
    own = _split(name)
    told = _split(description)
    kind = _kind(own) or _kind(told) or ("" if not own else "generic")
    if kind == "generic" and (set(own) | set(told)) & _TITLE_HINTS:
        kind = "title"
    if kind == "generic" and (set(own) & _PEOPLE or _is_role(own) or own[-1] == "by"):
        kind = "who"  # `keeper`, `scorer`, `lifted_by`
    lexicon = next((_LEXICON_OF[w] for w in own + told if w in _LEXICON_OF), None)
    content = [w for w in own + told if w not in _GENERIC]
    kinds = {w for _, names in _KINDS for w in names}
    heads = [w for w in content if w not in _LEXICON_OF and w not in kinds]
    bounds = {b for b in ("start", "end", "duration") if b in own}
    bounds |= {"start" for w in own if w in ("begin", "from", "starts")}
    bounds |= {"end" for w in own if w in ("stop", "finish", "ends", "until")}
    bounds |= {"duration" for w in own if w == "length"}
    return Ask(
        name,
        kind,
        _groups(content),
        lexicon,
        frozenset(s for h in heads for s in terms(h)),
        _question(question)[0],
        frozenset(bounds),
        _verbs(description)
        | {s for w in own if w.endswith(("ed", "ing")) for s in terms(w)},
        _question(question)[1],
    )


@lru_cache(maxsize=16)
def _question(question: str) -> tuple[tuple[frozenset[str], ...], frozenset[str]]:
    """The question's word groups and verbs, read once per question."""
    return _groups(re.findall(r"[a-z0-9]+", question.lower())), _verbs(question)


def _verbs(text: str) -> frozenset[str]:
    """Stems of the words that act in a description or question.

    A word after "the", "a", "which"… names a thing, not an action; names
    (capitalised), people, kind words and stop words are no verbs.
    """
    raw = re.findall(r"[A-Za-z']+", text)
    words = [w.lower() for w in raw]
    found: set[str] = set()
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        if i == 0 or before in _DET | {"which", "what", "whose"} or word in _PEOPLE:
            continue
        if raw[i][0].isupper():
            continue
        if word in _GENERIC or word in _LEXICON_OF:
            continue
        found.update(terms(word))
    return frozenset(found)


def _kind(words: list[str]) -> str | None:
    found = set(words)
    return next((kind for kind, names in _KINDS if found & names), None)


def _is_role(words: list[str]) -> bool:
    """A field named for a person by what they do: `scorer`, `winner`."""
    return any(
        w.endswith(("er", "or", "ist"))
        and len(w) > 4
        and w not in _GENERIC | _NOT_ROLES
        and w not in _LEXICON_OF
        for w in words[-1:]
    )


def candidates(ask: Ask, pool: list[Moment]) -> list[Moment]:
    """The moments of `pool` a field reads, in turn until one answers it.

    Those sharing words with the field (or, for a field without words of its
    own, with the question), most first; else the first moment alone.
    """
    wanted = frozenset().union(*ask.asked)
    wanted |= _related(wanted)
    shared = [(len(wanted & set(_sentence(m).stem)), m) for m in pool]
    related = [m for n, m in sorted(shared, key=lambda s: -s[0]) if n]
    return related or pool[:1]


def _related(words: frozenset[str]) -> frozenset[str]:
    """Stems of the words that show a field's word in a moment (`_RELATED`)."""
    return frozenset(
        s for w in words for r in _RELATED.get(w, ()) for s in terms(r) or [r]
    )


# -- phrases ------------------------------------------------------------------


def text(ask: Ask, moment: Moment) -> str | None:
    """The phrase of `moment` that answers a string field; `None`: not found."""
    kind, words = ask.kind, _sentence(moment)
    simple = {
        "": moment.description,
        "what": moment.description,
        "title": moment.video.title,
        "id": moment.video.item_id,
        "range": moment.time_range,
    }
    if kind in simple:
        return simple[kind]
    if kind in ("url", "thumbnail"):  # signed media URLs: no words of a moment's
        return None
    if kind == "keywords":
        return ", ".join(keywords(moment)) or None
    if kind == "when" and ask.bounds & {"start", "end"}:
        start, end = moment.time_range.split("\u2013")
        return start if "start" in ask.bounds else end
    if ask.lexicon:
        return _lexical(ask, words)
    # A title names what a video is, not who does what or when in it.
    if kind in ("name", "who"):
        person = _person(words) if kind == "who" and not words.title else None
        return _name(ask, moment) or person
    if kind == "when":
        return _when(words) or (None if words.title else moment.time_range)
    readers = {"where": _place, "why": _reason, "how": _how, "tool": _tool}
    if kind in readers:
        return readers[kind](words)
    spans = _objects(ask, words)
    return _join(words, spans[0][0], spans[-1][1]) if spans else None


def texts(ask: Ask, moment: Moment) -> list[str]:
    """The phrases that answer a list field: "dry suits", "helmets"."""
    words = _sentence(moment)
    if ask.kind == "generic" and not ask.lexicon:
        return [_join(words, a, b) for a, b in _objects(ask, words)]
    found = text(ask, moment)
    return [found] if found else []


def _objects(ask: Ask, words: _Words) -> list[tuple[int, int]]:
    """The things the field names: its verb's objects, else its own noun."""
    spans = _object(ask.verbs if ask.groups else ask.said_verbs, words)
    if spans:
        return spans
    for i, stem in enumerate(words.stem):
        last = i + 1 == len(words.low) or words.low[i + 1] in _BREAK
        if stem and stem in ask.heads and last and words.low[i] not in _PEOPLE:
            start = i
            while start > 0 and words.low[start - 1] not in _BREAK:
                start -= 1
                if words.low[start] in _DET:
                    break
            return [(start, i + 1)]
    return []


def keywords(moment: Moment) -> list[str]:
    """The moment's content words, in order, each once."""
    words = _sentence(moment)
    seen: dict[str, None] = {}
    for low, stem in zip(words.low, words.stem, strict=True):
        if stem and low[0].isalpha() and low not in _BREAK and len(low) > 2:
            seen.setdefault(low, None)
    return list(seen)


def _join(words: _Words, start: int, end: int) -> str:
    return " ".join(words.raw[start:end]).replace(" '", "'")


def _phrase_end(words: _Words, start: int, *, of: bool = True, limit: int = 6) -> int:
    """Where a noun phrase starting at `start` ends ("of" may join two)."""
    end = start
    while end < len(words.low) and end - start < limit:
        low = words.low[end]
        if low == "of" and of and end > start and end + 1 < len(words.low):
            if words.low[end + 1] in _BREAK:
                break
        elif low in _BREAK:
            break
        end += 1
    return end


def _names(words: _Words) -> list[tuple[int, int]]:
    """Spans of capitalised names (runs of capitalised words)."""
    spans: list[tuple[int, int]] = []
    i, count = 0, len(words.raw)
    while i < count:
        raw = words.raw[i]
        starts = i == 0
        common = words.low[i].removesuffix("'s") in _NOT_NAMES
        possessive = words.low[i].endswith("'s")
        is_name = raw[:1].isupper() and raw[0].isalpha() and not common
        if is_name and starts and words.title and not possessive:
            is_name = False  # a title's first word is capitalised by form
        if not is_name:
            i += 1
            continue
        end = i + 1
        while (
            end < count
            and words.raw[end][:1].isupper()
            and words.raw[end][0].isalpha()
            and words.low[end] not in _NOT_NAMES
        ):
            end += 1
        spans.append((i, end))
        i = end
    return spans


def _name(ask: Ask, moment: Moment) -> str | None:
    """The name the field asks for: nearest its own word; in a title, only there."""
    for words in (_sentence(moment), _words(moment.video.title, title=True)):
        spans = _names(words)
        near = [s for s in spans if _distance(words, s, ask.heads) <= 3]
        if words.title and not near:
            continue
        chosen = near or spans
        if chosen:
            start, end = min(chosen, key=lambda s: _distance(words, s, ask.heads))
            return _join(words, start, end).removesuffix("'s").removesuffix("\u2019s")
    return None


def _distance(words: _Words, span: tuple[int, int], stems: frozenset[str]) -> int:
    """Tokens between `span` and the nearest of `stems` (far when none is there)."""
    at = [i for i, s in enumerate(words.stem) if s and s in stems]
    return min((min(abs(i - span[0]), abs(i - (span[1] - 1))) for i in at), default=99)


def _person(words: _Words) -> str | None:
    """The first person the moment names, with its determiner ("a chef")."""
    for i, low in enumerate(words.low):
        if low in _PEOPLE and (i == 0 or words.low[i - 1] not in _PREP):
            start = i
            while start > 0 and words.low[start - 1] not in _BREAK:
                start -= 1
                if words.low[start] in _DET:
                    break
            end = i + 1
            while end < len(words.low) and words.low[end] in _PEOPLE:
                end += 1
            return _join(words, start, end)
    return None


def _is_time(words: _Words, start: int, end: int) -> bool:
    return any(w in _TIME_WORDS for w in words.low[start:end])


def _place(words: _Words) -> str | None:
    """The place the moment names: a phrase after at/in/on…, not a time.

    "at the north quay" before "on deck": a phrase with "the" or "a" first.
    """
    bare = None
    for i, low in enumerate(words.low):
        if low not in _PLACE_PREP:
            continue
        start = i + 1
        end = _phrase_end(words, start, of=False)
        if end == start or _is_time(words, start, end):
            continue
        if words.low[end - 1] in _NOT_PLACES or _number(words.low[start]) is not None:
            continue  # "in a long line", "in size": no place
        if words.low[start] in _DET or words.raw[start][:1].isupper():
            return _join(words, start, end)
        bare = bare or _join(words, i, end)  # "on deck"
    return bare


def _when(words: _Words) -> str | None:
    """A time phrase: "just before dawn", "at six in the morning", "overnight"."""
    for i, low in enumerate(words.low):
        if low not in _TIME_WORDS:
            continue
        start = i
        while start > 0:
            previous = words.low[start - 1]
            if previous in _PREP:
                start -= 1
                left = words.low[start - 1] if start > 0 else ""
                if not (left in _PREP or left in _MODIFIERS or _number(left)):
                    break
            elif previous in _DET or previous in _MODIFIERS or _number(previous):
                start -= 1
            else:
                break
        return _join(words, start, i + 1)
    return None


def _reason(words: _Words) -> str | None:
    """Why: "to <verb> …" (not "to the …"), "because …", "so …", or "for …".

    "For" counts after a thing ("a yellow card for a late tackle"), not after
    an action ("bid for") and not before a time ("for forty minutes").
    """
    for i, low in enumerate(words.low):
        nxt = words.low[i + 1] if i + 1 < len(words.low) else ""
        purpose = low == "to" and nxt[:1].isalpha() and nxt not in _DET | _PREP
        purpose = purpose and nxt not in _PRONOUNS | {"her", "him"}
        purpose = purpose and _number(nxt) is None
        if purpose or low in ("because", "so"):
            end = i + 1
            while end < len(words.low) and words.low[end] not in _CLAUSE_END:
                end += 1
            if end > i + 1:
                return _join(words, i, end)
        if low == "for" and _after_thing(words, i):
            end = _phrase_end(words, i + 1, of=True)
            if end > i + 1 and not _is_time(words, i + 1, end):
                return _join(words, i, end)
    return None


def _after_thing(words: _Words, at: int) -> bool:
    """Whether the word before `at` ends a phrase that starts with "a", "the"…."""
    for back in range(at - 1, max(-1, at - 4), -1):
        if words.low[back] in _DET:
            return back < at - 1
        if words.low[back] in _BREAK:
            return False
    return False


def _how(words: _Words) -> str | None:
    """How: "by diving to her left", "with a razor", "using …"."""
    for i, low in enumerate(words.low):
        if low in ("by", "with", "using") and i + 1 < len(words.low):
            if words.low[i + 1] in _PEOPLE:
                continue
            end = i + 1
            while end < len(words.low) and end - i <= 6:
                here = words.low[end]
                if here in _PUNCT | {"and", "but", "while", "then", "before", "after"}:
                    break
                if here == "to" and end + 1 < len(words.low):
                    following = words.low[end + 1]
                    if following not in _DET and following not in {"her", "his", "him"}:
                        break  # "to <verb>": a reason, not the how
                end += 1
            return _join(words, i, end)
    return None


def _tool(words: _Words) -> str | None:
    """What something is done with: the thing after "with" or "using"."""
    for i, low in enumerate(words.low):
        if low in ("with", "using") and i + 1 < len(words.low):
            start = i + 1
            end = _phrase_end(words, start, of=False)
            if end > start and not set(words.low[start:end]) & _PEOPLE:
                return _join(words, start, end)
    return None


def _lexical(ask: Ask, words: _Words) -> str | None:
    """A colour, flavour… word; next to the field's own word when it names one."""
    lexicon = _LEXICONS[ask.lexicon or ""]
    found = [i for i, low in enumerate(words.low) if low in lexicon]
    if not found:
        return None
    if ask.heads:
        heads = [i for i, s in enumerate(words.stem) if s and s in ask.heads]
        near = [(abs(i - h), i) for i in found for h in heads if abs(i - h) <= 3]
        if not near:
            return None  # a colour of something else
        return words.raw[min(near)[1]]
    return words.raw[found[0]]


def _object(wanted: frozenset[str], words: _Words) -> list[tuple[int, int]]:
    """The objects of the field's verb ("inspects" → "the gills of a large turbot").

    Someone it is done to comes out ("hands Mia a bicycle": "a bicycle"), "it"
    is the thing named before it, and things joined by "and" are each one
    ("dry suits and helmets").
    """
    for i, stem in enumerate(words.stem):
        if not stem or stem not in wanted or words.low[i] in _PEOPLE:
            continue
        if (i > 0 and words.low[i - 1] in _DET) or words.raw[i][0].isupper():
            continue  # "a chef": a noun; "Mia": a name
        start = i + 1
        while start < len(words.low) and words.low[start] in _PARTICLES:
            start += 1
        someone = words.raw[start][0].isupper() or words.low[start] in _OBJECTS
        if someone and start + 1 < len(words.low) and words.low[start + 1] in _DET:
            start += 1  # "hands Mia a bicycle", "gives her a cake"
        if start + 1 < len(words.low) and words.low[start] in _PLACE_PREP | {"for"}:
            start += 1  # "bid for boxes of cod", "crashes on a wet root"
        if start >= len(words.low) or words.low[start] in _BREAK:
            continue
        end = _phrase_end(words, start)
        if _is_time(words, start, end):
            continue
        if words.low[start] in _PRONOUNS and end == start + 1:
            found = _antecedent(words, i)
            return [found] if found else []
        spans = [(start, end)]
        while end + 1 < len(words.low) and words.low[end] in ("and", "or", ","):
            after = _phrase_end(words, end + 1)
            following = words.low[after] if after < len(words.low) else ""
            clause = set(words.low[end + 1 : after]) & _PEOPLE
            if after == end + 1 or clause or following in _VERB_NEXT:
                break  # "and asks how", "and both teams shake hands"
            spans.append((end + 1, after))
            end = after
        return spans
    return []


def _antecedent(words: _Words, before: int) -> tuple[int, int] | None:
    """The nearest thing named before `before` that is no person ("a large turbot")."""
    end = before
    while end > 0:
        while end > 0 and words.low[end - 1] in _BREAK:
            end -= 1
        start = end
        while start > 0 and words.low[start - 1] not in _BREAK:
            start -= 1
            if words.low[start] in _DET:
                break
        span = words.low[start:end]
        if span and span[0] in _DET and not set(span) & _PEOPLE:
            return start, end
        end = start
    return None


# -- numbers, truth, options -----------------------------------------------------


def _number(low: str) -> float | None:
    """A number written as digits, a word or an ordinal ("7", "seven", "seventh")."""
    digits = re.fullmatch(r"[£$€]?(\d+(?:\.\d+)?)(?:st|nd|rd|th)?", low)
    if digits:
        return float(digits.group(1))
    value = _NUMBERS.get(low)
    return None if value is None else float(value)


def _numbers(words: _Words) -> list[tuple[int, int, float]]:
    """(start, end, value) of each number, "twenty five" as one."""
    out: list[tuple[int, int, float]] = []
    i = 0
    while i < len(words.low):
        value = _number(words.low[i])
        if value is None:
            i += 1
            continue
        end = i + 1
        if 20 <= value < 100 and value % 10 == 0 and end < len(words.low):
            unit = _number(words.low[end])
            if unit is not None and 0 < unit < 10:
                value, end = value + unit, end + 1
        out.append((i, end, value))
        i = end
    return out


def number(ask: Ask, moment: Moment, position: int) -> float | None:
    """The number that answers a numeric field; `None`: not found."""
    names = set(_split(ask.name))
    if "start" in ask.bounds or (
        names & {"time", "timestamp", "at"} and not ask.groups
    ):
        return moment.start_sec
    if "end" in ask.bounds:
        return moment.end_sec
    if "duration" in ask.bounds:
        whole = "video" in names
        return moment.video.duration if whole else moment.end_sec - moment.start_sec
    if names & {"confidence", "relevance", "probability", "certainty", "likelihood"}:
        return 0.9
    if names & {"rank", "index", "position"}:
        return float(position)
    wanted = frozenset().union(*ask.asked)
    wanted |= _related(wanted)
    for words in (_sentence(moment), _words(moment.video.title, title=True)):
        if "year" in wanted:  # "2024": a year wherever it is written
            years = [v for _, _, v in _numbers(words) if 1900 <= v <= 2100]
            if years:
                return years[0]
        found = _near_number(words, wanted, one=bool(ask.groups))
        if found is not None:
            return found
    return None


def _near_number(words: _Words, wanted: frozenset[str], *, one: bool) -> float | None:
    """The number nearest a word of `wanted` (within three words).

    With `one`, "a goal" is one goal (for the field's own word, not the
    question's: "a ferry arrives" counts nothing the field asked).
    """
    best: tuple[int, float] | None = None
    for start, end, value in _numbers(words):
        near = [
            abs(j - start)
            for j in range(max(0, start - 3), min(len(words.low), end + 3))
            if not start <= j < end and words.stem[j] in wanted
        ]
        if near and (best is None or min(near) < best[0]):
            best = (min(near), value)
    if best is not None or not one:
        return None if best is None else best[1]
    for i, low in enumerate(words.low[:-1]):
        if low in ("a", "an") and set(words.stem[i + 1 : i + 3]) & wanted:
            return 1.0
    return None


def supports(ask: Ask, moment: Moment) -> bool:
    """Whether the moment says all the field asks (its words, else the question's)."""
    words = _sentence(moment)
    present = set(_words(moment.video.title, title=True).stem)
    for i, stem in enumerate(words.stem):
        if stem and not set(words.low[max(0, i - 2) : i]) & _NEGATION:
            present.add(stem)
    return all(group & present for group in ask.asked)


def option(ask: Ask, options: list[Any], moment: Moment) -> Any | None:
    """The option the moment names, nearest the field's word; `None`: none."""
    words = _sentence(moment)
    title = _words(moment.video.title, title=True)
    found: list[tuple[int, int, Any]] = []
    for order, value in enumerate(options):
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, (int, float)):
            hits = [s for s, _, v in _numbers(words) if v == value]
            where = hits[0] if hits else None
        elif isinstance(value, str):
            wanted = set(terms(value.replace("_", " "), question=True))
            at = [i for i, s in enumerate(words.stem) if s in wanted]
            if wanted and wanted <= set(words.stem):
                where = at[0]
            elif wanted and wanted <= set(words.stem) | set(title.stem):
                where = len(words.low) + 1  # named by the title only
            else:
                where = None
        else:
            continue
        if where is not None:
            span = (where, where + 1)
            found.append((_distance(words, span, ask.heads), order, value))
    return min(found, key=lambda f: (f[0], f[1]))[2] if found else None
