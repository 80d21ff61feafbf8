"""Pair recipes name their datasets by gravity_core.names' rules, and every ablation the mapping knows is built."""

import pytest

from gravity.v1 import training_pb2
from gravity_core import names
from gravity_pairgen.recipes import ABLATIONS, normalize_ablations, normalize_recipe, recipe


def test_every_ablation_of_the_mapping_is_buildable_and_nothing_else() -> None:
    assert set(ABLATIONS) == set(names.ABLATIONS)
    assert normalize_ablations(["all"]) == list(ABLATIONS)


@pytest.mark.parametrize(
    ("given", "canonical", "dataset"),
    [
        ("", "full", "gravity"),
        ("full", "full", "gravity"),
        ("values", "no-values", "gravity-no-values"),
        ("no-values", "no-values", "gravity-no-values"),
        ("gravity-no-openness", "no-openness", "gravity-no-openness"),
        (" No-Interests ", "no-interests", "gravity-no-interests"),
    ],
)
def test_recipes_and_their_datasets(given: str, canonical: str, dataset: str) -> None:
    assert normalize_recipe(given) == canonical
    r = recipe(given)
    assert (r.name, r.dataset) == (canonical, dataset)
    # the dataset is the name of the ablation method its adapter serves, and round-trips on the wire
    assert names.method_name(training_pb2.AdapterRef(**names.method_fields(dataset))) == dataset


def test_unknown_recipes_and_ablations_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown recipe 'no-luck'"):
        normalize_recipe("no-luck")
    with pytest.raises(ValueError, match="unknown ablation 'luck'"):
        normalize_ablations(["luck"])
