"""Planted readers: synthetic readers with a known truth, written in the Amazon Reviews 2023 format.

For each reader, from the seed alone (one generator per reader, so reader i is the same whatever N is):

* the truth (truth.py): demographics (an age within a uniformly drawn group, a gender, a country from the
  profiler's candidates), 2–4 favourite genres of the catalog, a level for each Big Five trait, and a
  stance on every seed statement (support / oppose / neutral, uniform);
* which part of it the reviews express: ``statements_per_reader`` statements (about ``neutral_share`` of
  them neutral, the rest split between support and oppose), ``items_per_trait`` Mini-IPIP items of every
  trait, and one cue for each demographic field;
* the reviews: ``books_per_genre`` books of each favourite genre and ``other_reviews`` books of other
  genres (one each), so the favourite genres, and only they, hold at least the profiler's interest
  threshold of the reviews (paper §3.2: 10%); every stance sentence, trait marker and cue is placed in
  one review, among ordinary sentences about the book;
* ``withhold`` of the three demographic fields are left out of ``demographics.csv``.

Output (a directory, replaced atomically): ``Books.jsonl``, ``meta_Books.jsonl`` (the catalog the reviews
refer to), ``demographics.csv``, ``truth.jsonl`` and ``plant.json``. The same seed and options give
byte-identical files.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gravity_core.amazon import BookRecord, iter_books
from gravity_core.artifacts import sha256_file
from gravity_core.errors import InvalidInput
from gravity_core.files import staged_dir, write_text
from gravity_core.sample import sample_dir
from gravity_core.skips import SkipLog
from gravity_core.values import SeedStatement, load_seed_statements
from gravity_fidelity import phrasing
from gravity_fidelity.truth import (
    PLANT_FILE,
    TRAIT_LETTERS,
    TRAITS,
    TRUTH_FILE,
    Expressed,
    PlantedReview,
    PlantManifest,
    ReaderTruth,
    TruthDemographics,
    write_truths,
)
from gravity_profiler.personality import IpipItem, mini_ipip_items
from gravity_profiler.settings import ProfilerSettings

REVIEWS_FILE = "Books.jsonl"
DEMOGRAPHICS_FILE = "demographics.csv"
AGE_RANGES = {"young": (18, 30), "middle-aged": (31, 60), "senior": (61, 85)}
GENDERS = ("female", "male")
# Reviews are dated from here, a few days apart (milliseconds, as in the Amazon dataset).
_EPOCH_MS = 1_600_000_000_000
_DAY_MS = 86_400_000


@dataclass(frozen=True)
class PlantOptions:
    readers: int = 8
    seed: int = 13
    statements_per_reader: int = 12
    neutral_share: float = 0.2
    items_per_trait: int = 2
    summary_statements: int = 6
    min_genres: int = 2
    max_genres: int = 4
    books_per_genre: int = 5
    other_reviews: int = 2
    withhold: int = 1
    countries: tuple[str, ...] = tuple(ProfilerSettings().countries)
    # The profiler reads each review up to this many characters and counts a genre from this share.
    max_review_chars: int = ProfilerSettings().max_review_chars
    interest_threshold: float = ProfilerSettings().interest_threshold

    def check(self) -> None:
        def bad(option: str, message: str) -> InvalidInput:
            return InvalidInput(option, message)

        if self.readers < 1:
            raise bad("--readers", "must be at least 1")
        if not 0 <= self.statements_per_reader <= 150:
            raise bad("--statements-per-reader", "must be between 0 and 150")
        if not 0.0 <= self.neutral_share <= 1.0:
            raise bad("--neutral-share", "must be between 0 and 1")
        if not 1 <= self.items_per_trait <= 4:
            raise bad("--items-per-trait", "must be between 1 and 4 (the Mini-IPIP has 4 items per trait)")
        if not 0 <= self.summary_statements <= 6:
            raise bad(
                "--summary-statements", "must be between 0 and 6 (the paper's value summary: <= 6 sentences)"
            )
        if not 1 <= self.min_genres <= self.max_genres:
            raise bad("--genres", "needs 1 <= minimum <= maximum")
        if self.books_per_genre < 1 or self.other_reviews < 0:
            raise bad("--books-per-genre", "needs at least one book per favourite genre")
        if not 0 <= self.withhold <= 3:
            raise bad("--withhold", "must be between 0 and 3 (age group, gender, country)")
        unknown = [c for c in self.countries if c not in phrasing.DEMOGRAPHIC_CUES["country"]]
        if unknown:
            raise bad("countries", f"no planted cues for {', '.join(unknown)}")
        # Favourites must reach the interest threshold and other genres stay under it, at every genre count.
        for favourites in (self.min_genres, self.max_genres):
            total = favourites * self.books_per_genre + self.other_reviews
            if self.books_per_genre / total < self.interest_threshold or (
                self.other_reviews and 1 / total >= self.interest_threshold
            ):
                raise bad(
                    "--books-per-genre",
                    f"with {favourites} favourite genres of {self.books_per_genre} reviews and {self.other_reviews} "
                    f"other reviews, the genres would not separate at the {self.interest_threshold:.0%} interest "
                    "threshold; change --books-per-genre or --other-reviews",
                )


@dataclass
class PlantResult:
    out: Path
    truths: list[ReaderTruth]
    manifest: PlantManifest
    reviews: int = 0


@dataclass
class _Carry:
    """A sentence a review carries about the reader, and what it expresses."""

    kind: str  # "statement" | "item" | "demographic"
    key: str
    text: str


@dataclass
class Draft:
    book: BookRecord
    rating: float
    title: str
    timestamp_ms: int
    opener: str
    closer: str
    filler: str
    carried: list[_Carry] = field(default_factory=list)
    rewritten: bool = False

    def text(self, with_filler: bool = True) -> str:
        middle = [c.text for c in self.carried]
        if with_filler and self.filler:
            middle.insert(len(middle) // 2, self.filler)
        return " ".join(part for part in (self.opener, *middle, self.closer) if part)


def reader_rng(seed: int, index: int, purpose: str = "reader") -> random.Random:
    digest = hashlib.sha256(f"gravity-fidelity:{purpose}:{seed}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def reader_id(seed: int, index: int) -> str:
    """A 28-character upper-case id shaped like an Amazon reviewer id, unique per (seed, index)."""
    digest = hashlib.sha256(f"gravity-fidelity:user:{seed}:{index}".encode()).digest()
    return "AF" + base64.b32encode(digest).decode("ascii").rstrip("=")[:26]


def catalog_genres(books: list[BookRecord]) -> dict[str, list[BookRecord]]:
    """genre -> its books with a description (sorted by parent_asin), genres in name order."""
    out: dict[str, list[BookRecord]] = {}
    for book in sorted(books, key=lambda b: b.parent_asin):
        if book.genre and book.description:
            out.setdefault(book.genre, []).append(book)
    return dict(sorted(out.items()))


def plant(
    options: PlantOptions,
    out: str | Path,
    catalog_path: str | Path | None = None,
    rewriter: Callable[[list[Draft]], tuple[int, int]] | None = None,
) -> PlantResult:
    """Write ``options.readers`` planted readers into directory ``out`` (replaced atomically)."""
    options.check()
    out_dir = Path(out).expanduser().resolve()
    if out_dir.exists() and (
        not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / PLANT_FILE).is_file())
    ):
        raise InvalidInput(
            "--out", f"{out_dir} exists and is not a planted-readers directory; choose a new or empty one"
        )
    meta = Path(catalog_path).expanduser() if catalog_path else sample_dir() / "meta_Books.jsonl"
    if not meta.is_file():
        raise InvalidInput("--meta", f"{meta} does not exist")
    skips = SkipLog()
    genres = catalog_genres([b for _, b in iter_books(meta, skips)])
    eligible = {g: books for g, books in genres.items() if len(books) >= options.books_per_genre}
    if len(eligible) < options.max_genres + options.other_reviews:
        raise InvalidInput(
            "--meta",
            f"the catalog {meta} has {len(eligible)} genres with at least {options.books_per_genre} described books; "
            f"planting needs {options.max_genres + options.other_reviews}",
        )
    statements = load_seed_statements()
    truths, drafts = [], []
    for index in range(options.readers):
        truth, reader_drafts = _plant_reader(options, index, statements, genres, eligible)
        truths.append(truth)
        drafts.append(reader_drafts)
    rewritten = refused = 0
    if rewriter is not None:
        rewritten, refused = rewriter([d for reader in drafts for d in reader])
    for truth, reader_drafts in zip(truths, drafts, strict=True):
        _finish_reviews(options, truth, reader_drafts)
    manifest = PlantManifest(
        seed=options.seed,
        readers=options.readers,
        options={k: list(v) if isinstance(v, tuple) else v for k, v in asdict(options).items()},
        catalog=meta.name,
        catalog_sha256=sha256_file(meta),
        statements_sha256=hashlib.sha256(
            json.dumps([asdict(s) for s in statements], sort_keys=True).encode()
        ).hexdigest(),
        rewritten=rewritten,
        rewrites_refused=refused,
    )
    meta_name = "meta_Books.jsonl.gz" if meta.suffix == ".gz" else "meta_Books.jsonl"
    with staged_dir(out_dir, durable=False) as stage:
        write_text(stage / REVIEWS_FILE, _reviews_jsonl(truths, drafts), durable=False)
        write_text(stage / DEMOGRAPHICS_FILE, _demographics_csv(truths), durable=False)
        shutil.copyfile(meta, stage / meta_name)
        write_truths(truths, stage / TRUTH_FILE)
        manifest.files = {
            name: sha256_file(stage / name)
            for name in (REVIEWS_FILE, DEMOGRAPHICS_FILE, meta_name, TRUTH_FILE)
        }
        write_text(stage / PLANT_FILE, manifest.model_dump_json(indent=2) + "\n", durable=False)
    return PlantResult(out_dir, truths, manifest, sum(len(t.reviews) for t in truths))


def _plant_reader(
    options: PlantOptions,
    index: int,
    statements: tuple[SeedStatement, ...],
    genres: dict[str, list[BookRecord]],
    eligible: dict[str, list[BookRecord]],
) -> tuple[ReaderTruth, list[Draft]]:
    rng = reader_rng(options.seed, index)
    group = rng.choice(tuple(AGE_RANGES))
    demographics = TruthDemographics(
        age=rng.randint(*AGE_RANGES[group]),
        age_group=group,
        gender=rng.choice(GENDERS),
        country=rng.choice(options.countries),
    )
    withheld = sorted(rng.sample(phrasing.DEMOGRAPHIC_FIELDS, options.withhold))
    favourites = sorted(rng.sample(sorted(eligible), rng.randint(options.min_genres, options.max_genres)))
    traits = {t: rng.choice(("high", "low")) for t in TRAITS}
    stances = {s.id: rng.choice(phrasing.STANCES) for s in statements}

    expressed_ids = _expressed_statements(options, stances, rng)
    decided = [sid for sid, st in stances.items() if st != "neutral"]
    named = rng.sample(decided, min(options.summary_statements, len(decided)))

    items_by_trait: dict[str, list[IpipItem]] = {}
    for item in mini_ipip_items():
        items_by_trait.setdefault(item.trait, []).append(item)
    expressed_items = {
        t: sorted(rng.sample(items_by_trait[TRAIT_LETTERS[t]], options.items_per_trait), key=lambda i: i.id)
        for t in TRAITS
    }

    by_id = {s.id: s for s in statements}
    carried = [
        _Carry("statement", sid, phrasing.stance_sentence(by_id[sid].text, stances[sid], rng))
        for sid in expressed_ids
    ]
    carried += [
        _Carry("item", item.id, phrasing.marker_sentence(item, traits[t], rng))
        for t in TRAITS
        for item in expressed_items[t]
    ]
    carried += [
        _Carry("demographic", f, phrasing.demographic_cue(f, demographics.value(f), rng))
        for f in phrasing.DEMOGRAPHIC_FIELDS
    ]
    rng.shuffle(carried)

    books = [b for g in favourites for b in rng.sample(eligible[g], options.books_per_genre)]
    others = [g for g in sorted(genres) if g not in favourites]
    books += [rng.choice(genres[g]) for g in rng.sample(others, options.other_reviews)]
    rng.shuffle(books)
    drafts = []
    day = rng.randint(0, 2000)
    for book in books:
        day += rng.randint(2, 40)
        rating = float(rng.choice((3, 4, 4, 5, 5, 5)))
        drafts.append(
            Draft(
                book,
                rating,
                phrasing.review_title(rating, rng),
                _EPOCH_MS + day * _DAY_MS + rng.randint(0, _DAY_MS - 1),
                phrasing.opener(book.title, book.author, rng),
                phrasing.closer(rating, rng),
                phrasing.filler(rng) if rng.random() < 0.5 else "",
            )
        )
    # Spread the carried sentences evenly over the reviews, in a random review order.
    order = list(range(len(drafts)))
    rng.shuffle(order)
    for k, carry in enumerate(carried):
        drafts[order[k % len(order)]].carried.append(carry)

    truth = ReaderTruth(
        user_id=reader_id(options.seed, index),
        demographics=demographics,
        withheld=withheld,
        genres=favourites,
        traits=traits,
        stances=stances,
        summary_statements=named,
        expressed=Expressed(
            statements=sorted(expressed_ids),
            traits={t: [i.id for i in expressed_items[t]] for t in TRAITS},
            demographics=list(phrasing.DEMOGRAPHIC_FIELDS),
        ),
    )
    return truth, drafts


def _expressed_statements(options: PlantOptions, stances: dict[str, str], rng: random.Random) -> list[str]:
    """``statements_per_reader`` statements: about ``neutral_share`` neutral, the rest split evenly between
    support and oppose (the odd one to either), each drawn from the reader's statements of that stance."""
    n = options.statements_per_reader
    n_neutral = round(n * options.neutral_share)
    n_support = (n - n_neutral) // 2 + ((n - n_neutral) % 2 if rng.random() < 0.5 else 0)
    wanted = {"support": n_support, "oppose": n - n_neutral - n_support, "neutral": n_neutral}
    chosen: list[str] = []
    for stance, count in wanted.items():
        pool = [sid for sid, st in stances.items() if st == stance]
        if count > len(pool):
            raise InvalidInput(
                "--statements-per-reader",
                f"a reader holds only {len(pool)} {stance} stances, fewer than the {count} to express",
            )
        chosen += rng.sample(pool, count)
    return chosen


def _finish_reviews(options: PlantOptions, truth: ReaderTruth, drafts: list[Draft]) -> None:
    """Fit every review within the profiler's per-review read length, and record what each expresses."""
    reviews = []
    for draft in drafts:
        if len(draft.text()) > options.max_review_chars:
            draft.filler = ""
        if len(draft.text()) > options.max_review_chars:
            raise InvalidInput(
                "--statements-per-reader",
                f"a review of {draft.book.parent_asin} would be {len(draft.text())} characters, more than the "
                f"{options.max_review_chars} the profiler reads; plant fewer statements or more books per genre",
            )
        reviews.append(
            PlantedReview(
                parent_asin=draft.book.parent_asin,
                statements=[c.key for c in draft.carried if c.kind == "statement"],
                items=[c.key for c in draft.carried if c.kind == "item"],
                demographics=[c.key for c in draft.carried if c.kind == "demographic"],
                rewritten=draft.rewritten,
            )
        )
    truth.reviews = reviews


def _reviews_jsonl(truths: list[ReaderTruth], drafts: list[list[Draft]]) -> str:
    """Reviews in the Amazon Reviews 2023 format, one JSON object per line."""
    lines = []
    for truth, reader in zip(truths, drafts, strict=True):
        for draft in reader:
            lines.append(
                json.dumps(
                    {
                        "rating": draft.rating,
                        "title": draft.title,
                        "text": draft.text(),
                        "images": [],
                        "asin": draft.book.parent_asin,
                        "parent_asin": draft.book.parent_asin,
                        "user_id": truth.user_id,
                        "timestamp": draft.timestamp_ms,
                        "helpful_vote": 0,
                        "verified_purchase": True,
                    },
                    ensure_ascii=False,
                )
            )
    return "\n".join(lines) + "\n"


def _demographics_csv(truths: list[ReaderTruth]) -> str:
    """user_id,age,gender,country; a withheld field is an empty cell (a withheld age group empties age)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user_id", "age", "gender", "country"])
    for t in truths:
        d = t.demographics
        writer.writerow(
            [
                t.user_id,
                "" if "age_group" in t.withheld else d.age,
                "" if "gender" in t.withheld else d.gender,
                "" if "country" in t.withheld else d.country,
            ]
        )
    return buffer.getvalue()
