"""The bundled sample meets the counts the project promises."""

from collections import Counter, defaultdict

from gravity_core.amazon import iter_books, iter_reviews, read_demographics
from gravity_core.skips import SkipLog


def test_sample_export_counts(sample_files) -> None:
    skips = SkipLog()
    reviews = [r for _, r in iter_reviews(sample_files["Books.jsonl"], skips)]
    books = {b.parent_asin: b for _, b in iter_books(sample_files["meta_Books.jsonl"], skips)}
    demo = read_demographics(sample_files["demographics.csv"], skips)
    assert skips.total == 0, skips.summary_lines()

    per_user = Counter(r.user_id for r in reviews)
    main_users = [u for u, n in per_user.items() if n >= 20]
    assert len(main_users) >= 16
    assert all(r.parent_asin in books for r in reviews)

    # at least 4 users per country, from their given country or (when left empty on purpose) the README's truth
    given = Counter(demo[u].country for u in main_users if demo.get(u) and demo[u].country)
    missing_country = [u for u in main_users if not (demo.get(u) and demo[u].country)]
    for country in ("USA", "Brazil", "India", "Japan"):
        assert given[country] + len(missing_country) >= 4
    assert len(missing_country) >= 1
    assert sum(1 for u in main_users if demo[u].age is None and not demo[u].age_group) >= 1
    assert sum(1 for u in main_users if not demo[u].gender) >= 1

    assert len(books) >= 60
    genres = Counter(b.genre for b in books.values())
    assert len(genres) >= 12
    for b in books.values():
        sentences = sum(b.description.count(p) for p in ".!?")
        assert 4 <= sentences <= 10, (b.parent_asin, sentences)
        assert 1.0 <= b.average_rating <= 5.0 and b.rating_number > 0

    # interests differ between users: not everyone shares the same top genre
    top = defaultdict(Counter)
    for r in reviews:
        top[r.user_id][books[r.parent_asin].genre] += 1
    assert len({c.most_common(1)[0][0] for u, c in top.items() if u in main_users}) >= 5
