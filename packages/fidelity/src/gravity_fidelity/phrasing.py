"""The sentences planted reviews are made of (paper §3.2: what the profiler is asked to read).

* **Stance sentences** carry one seed statement's text verbatim inside a frame that states the reader's
  stance: support ("I am firmly convinced that …"), oppose ("I could never accept that …") or neutral
  ("I have never made up my mind about whether …"). First-person statements ("I trust people …") are
  quoted instead, so the frame never reads "I believe that I believe …".
* **Trait markers** are behavioural sentences keyed to the 20 Mini-IPIP items the profiler rates
  (``data/trait_markers.json``): a HIGH reader agrees with the trait's positively keyed items and disagrees
  with its reverse-keyed ones, a LOW reader the opposite.
* **Demographic cues** place the reader in an age group, a gender and a country.
* **Book talk**: ordinary review sentences about the book (opening, filler, closing by rating), which carry
  nothing about the reader.

Everything is chosen by the caller's seeded generator; nothing here is per reader.
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from importlib import resources

from gravity_core.errors import ConfigError
from gravity_profiler.personality import IpipItem, mini_ipip_items

STANCES = ("support", "oppose", "neutral")
DEMOGRAPHIC_FIELDS = ("age_group", "gender", "country")

_CLAUSE_FRAMES = {
    "support": (
        "Reading it reminded me that I have always believed that {clause}.",
        "I am firmly convinced that {clause}.",
        "It only confirmed what I hold to be true: {clause}.",
        "Like the narrator, I truly believe that {clause}.",
    ),
    "oppose": (
        "I could never accept that {clause}.",
        "One character insists that {clause}, and I completely disagree.",
        "I firmly reject the idea that {clause}.",
        "It is simply wrong to claim that {clause}.",
    ),
    "neutral": (
        "The book asks whether {clause}; honestly, I have no firm opinion either way.",
        "I have never made up my mind about whether {clause}.",
    ),
}
_QUOTE_FRAMES = {
    "support": (
        'The book put into words what I have always felt: "{statement}"',
        'If anyone asked me, I would say it plainly: "{statement}" That is exactly me.',
    ),
    "oppose": (
        'A character says, "{statement}" That could not be further from how I see things.',
        'People sometimes tell me, "{statement}" I have never felt that way and never will.',
    ),
    "neutral": (
        'Someone in my book club said, "{statement}" I honestly have no view on that either way.',
        'The author seems to think, "{statement}" I cannot say whether that is true of me or not.',
    ),
}
_FIRST_PERSON = re.compile(r"\b(I|my|me|mine)\b")

DEMOGRAPHIC_CUES = {
    "age_group": {
        "young": (
            "I read it between lectures at university.",
            "As a student on a tight budget, I borrowed it from the campus library.",
        ),
        "middle-aged": (
            "With two teenagers at home and a full-time job, I read it in late evenings.",
            "After twenty years in the same job, I read it on my daily commute.",
        ),
        "senior": (
            "Since I retired, I finally have time for books like this one.",
            "My grandchildren gave me this copy for my birthday.",
        ),
    },
    "gender": {
        "female": (
            "As a woman, I noticed how carefully the heroine was written.",
            "As a mother, I read it twice.",
        ),
        "male": ("As a man, I noticed how carefully the hero was written.", "As a father, I read it twice."),
    },
    "country": {
        "USA": (
            "I read most of it on my porch here in Ohio.",
            "Our library here in Texas had a long waiting list.",
        ),
        "Brazil": (
            "I read most of it on the metro here in São Paulo.",
            "Our little street library here in Recife had a copy.",
        ),
        "India": (
            "I read most of it on the local train here in Mumbai.",
            "Our lending library here in Pune had a copy.",
        ),
        "Japan": (
            "I read most of it on the train here in Osaka.",
            "Our neighbourhood library here in Kyoto had a copy.",
        ),
    },
}

_OPENERS = (
    "I picked up {title} on a friend's recommendation.",
    "{title} by {author} had been on my list for months.",
    "I finished {title} over a long weekend.",
    "This was my first book by {author}.",
    "I bought {title} after reading the blurb twice.",
)
_FILLERS = (
    "The pacing is steady and the chapters are short.",
    "The prose is clear and never gets in the way.",
    "The middle section drags a little, but it picks up again.",
    "The ending ties things together nicely.",
    "Some of the secondary characters could have used more room.",
    "It is a solid example of its genre.",
)
_CLOSERS = {
    5: ("Five stars, and I will be recommending it.", "Easily one of my favourites this year."),
    4: ("Four stars from me.", "A good read, with a few small flaws."),
    3: ("Three stars: good, not great.", "Worth reading once."),
}
REVIEW_TITLES = {
    5: ("Loved it", "A wonderful read"),
    4: ("A rewarding read", "Worth the time"),
    3: ("Good, not great", "Mixed feelings"),
}


def statement_core(text: str) -> str:
    """The statement as it appears in every planted sentence (its trailing full stop dropped)."""
    return text.strip().rstrip(".").strip()


def is_first_person(statement: str) -> bool:
    """Whether the statement speaks as "I" (it is then quoted rather than framed as a clause)."""
    return bool(_FIRST_PERSON.search(statement))


def statement_clause(text: str) -> str:
    """The statement as a clause after "that": its first letter lowered unless it starts an initialism or "I"."""
    core = statement_core(text)
    # "Leisure time is ..." -> "leisure time is ..."; an initialism or "I" keeps its capital
    return core[0].lower() + core[1:] if len(core) > 1 and core[1].islower() else core


def stance_sentence(statement: str, stance: str, rng: random.Random) -> str:
    """One sentence stating ``stance`` on ``statement``, which appears in it verbatim (case aside)."""
    if stance not in STANCES:
        raise ValueError(f"stance {stance!r} is not one of {', '.join(STANCES)}")
    if is_first_person(statement):
        text = statement.strip()
        return rng.choice(_QUOTE_FRAMES[stance]).format(statement=text if text[-1] in ".!?" else text + ".")
    return rng.choice(_CLAUSE_FRAMES[stance]).format(clause=statement_clause(statement))


@lru_cache(maxsize=1)
def trait_markers() -> dict[str, dict[str, tuple[str, ...]]]:
    """item id -> {"agree": sentences, "disagree": sentences}, checked against the profiler's Mini-IPIP."""
    raw = json.loads(
        resources.files("gravity_fidelity").joinpath("data/trait_markers.json").read_text(encoding="utf-8")
    )
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for item in mini_ipip_items():
        entry = raw.get(item.id)
        if not isinstance(entry, dict) or not entry.get("agree") or not entry.get("disagree"):
            raise ConfigError(f"trait_markers.json: item {item.id} needs 'agree' and 'disagree' sentences")
        out[item.id] = {k: tuple(entry[k]) for k in ("agree", "disagree")}
    return out


def agrees(item: IpipItem, level: str) -> bool:
    """Whether a reader of ``level`` ("high"/"low") on the item's trait agrees with the item."""
    return (level == "high") != item.reverse


def marker_sentence(item: IpipItem, level: str, rng: random.Random) -> str:
    return rng.choice(trait_markers()[item.id]["agree" if agrees(item, level) else "disagree"])


def demographic_cue(field: str, value: str, rng: random.Random) -> str:
    options = DEMOGRAPHIC_CUES[field].get(value)
    if not options:
        raise ConfigError(
            f"no planted cue for {field} {value!r} (known: {', '.join(DEMOGRAPHIC_CUES[field])})"
        )
    return rng.choice(options)


def rating_key(rating: float) -> int:
    return min(5, max(3, round(rating)))


def opener(title: str, author: str, rng: random.Random) -> str:
    return rng.choice(_OPENERS).format(title=title, author=author or "this author")


def filler(rng: random.Random) -> str:
    return rng.choice(_FILLERS)


def closer(rating: float, rng: random.Random) -> str:
    return rng.choice(_CLOSERS[rating_key(rating)])


def review_title(rating: float, rng: random.Random) -> str:
    return rng.choice(REVIEW_TITLES[rating_key(rating)])
