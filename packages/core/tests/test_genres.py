from gravity_core import genres
from gravity_core.catalog import Catalog
from gravity_core.sample import sample_dir
from gravity_core.skips import SkipLog


def test_ten_figure4_categories_split_into_fiction_and_non_fiction() -> None:
    names = genres.cluster_names()
    assert len(names) == 10 and len(set(names)) == 10
    assert {genres.side_of(n) for n in names} == {"fiction", "non-fiction"}
    assert genres.side_of(genres.OTHER) == "unknown"


def test_leaf_genre_wins_over_group_and_unknown_is_other() -> None:
    assert genres.cluster_of("Young Adult", "Teen & Young Adult") == "Young Adult"
    assert genres.cluster_of("Historical Fiction", "Literature & Fiction") == "Fiction"
    assert genres.cluster_of("Thrillers", "Mystery, Thriller & Suspense") == "Mystery, Thriller, Crime"
    assert genres.cluster_of("Knitting", "Crafts, Hobbies & Home") == genres.OTHER


def test_every_sample_genre_has_a_cluster() -> None:
    catalog = Catalog.open(sample_dir() / "meta_Books.jsonl", SkipLog())
    groups = catalog.genre_groups()
    assert groups
    assert {
        g: genres.cluster_of(g, grp) for g, grp in groups.items() if genres.cluster_of(g, grp) == genres.OTHER
    } == {}
