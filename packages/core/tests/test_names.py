"""gravity_core.names: every method, facet and ablation converts to the wire and back, and a name or wire value
that does not make one is refused with an error naming the field."""

from __future__ import annotations

import pytest

from gravity.v1 import common_pb2, generation_pb2, judge_pb2, pairs_pb2, training_pb2
from gravity_core import names
from gravity_core.errors import InvalidInput
from gravity_core.proto_io import from_dict, to_dict

TABLE2_DISPLAY = {
    "original": "Original",
    "base-rewrite": "BaseRewrite",
    "demo-based": "DemoBased",
    "user-summary": "UserSummary",
    "lamp": "LaMP",
    "tri-agent": "TriAgent",
    "user-sft": "UserSFT",
    "pref-align": "PrefAlign",
    "gravity": "GRAVITY",
    "gravity-sft": "GRAVITY (SFT)",
}


def test_the_paper_methods_in_table_2_order_with_their_display_names() -> None:
    assert {name: s.display for name, s in names.METHODS.items()} == TABLE2_DISPLAY
    assert list(names.METHODS) == list(TABLE2_DISPLAY)
    assert tuple(list(TABLE2_DISPLAY)[1:9]) == names.TABLE2
    assert names.WITHOUT_ADAPTER == (
        "original",
        "base-rewrite",
        "demo-based",
        "user-summary",
        "lamp",
        "tri-agent",
    )


def test_every_wire_value_has_exactly_one_meaning() -> None:
    fixed = {s.wire for s in names.METHODS.values()}
    special = {common_pb2.METHOD_UNSPECIFIED, common_pb2.METHOD_GRAVITY_ABLATION, common_pb2.METHOD_CUSTOM}
    assert len(fixed) == len(names.METHODS)
    assert fixed | special == set(common_pb2.Method.values()) and not fixed & special
    for name, s in names.METHODS.items():
        assert common_pb2.Method.Name(s.wire) == "METHOD_" + name.upper().replace("-", "_")


@pytest.mark.parametrize("name", [*TABLE2_DISPLAY, "gravity-no-values", "gravity-no-openness", "my-baseline"])
def test_names_round_trip_through_every_message_that_carries_a_method(name: str) -> None:
    for cls in (
        generation_pb2.PersonalizeRequest,
        generation_pb2.PersonalizeResponse,
        generation_pb2.MethodInfo,
        judge_pb2.Generation,
        training_pb2.AdapterRef,
    ):
        message = cls(**names.method_fields(name))
        assert names.method_name(message) == name
        # ... and through the protobuf JSON mapping (generations.jsonl, gravity_adapter.json)
        assert names.method_name(from_dict(to_dict(message), cls)) == name


def test_ablations_carry_their_pair_recipe_as_the_variant() -> None:
    assert names.method_to_wire("gravity-no-values") == (common_pb2.METHOD_GRAVITY_ABLATION, "no-values")
    assert names.method_to_wire("lamp") == (common_pb2.METHOD_LAMP, "")
    assert names.method_to_wire("my-baseline") == (common_pb2.METHOD_CUSTOM, "my-baseline")
    assert names.method_to_wire("") == (common_pb2.METHOD_UNSPECIFIED, "")
    assert names.method_to_wire(common_pb2.METHOD_GRAVITY) == (common_pb2.METHOD_GRAVITY, "")
    for removed in names.ABLATIONS:
        method = names.ablation_method(removed)
        assert method == f"gravity-no-{removed}" and names.ablation_removed(method) == removed
        assert (
            names.method_from_wire(common_pb2.METHOD_GRAVITY_ABLATION, names.ablation_recipe(removed))
            == method
        )
        assert names.dataset_for_recipe(names.ablation_recipe(removed)) == method
        assert names.role_of(method) == "ablation" and names.is_ablation(method)
    assert set(names.ABLATIONS) == {
        "interests",
        "category",
        "summary",
        "values",
        "personality",
        "openness",
        "conscientiousness",
        "extraversion",
        "agreeableness",
        "neuroticism",
    }
    assert names.ablation_removed("gravity") is None and names.dataset_for_recipe("full") == "gravity"


def test_display_names_of_ablations_follow_table_5() -> None:
    assert names.display_name("gravity-no-values") == "GRAVITY − Values & Beliefs"
    assert names.display_name("gravity-no-interests") == "GRAVITY − User Interests"
    assert names.display_name("gravity-no-openness") == "GRAVITY − Openness"
    assert names.display_name("my-baseline") == "my-baseline"


def test_adapter_methods_train_on_the_dataset_of_their_name_with_their_recipe() -> None:
    assert names.RECIPE_FOR_DATASET == {
        "gravity": "gravity-dpo",
        "gravity-sft": "gravity-sft",
        "user-sft": "user-sft",
        "pref-align": "pref-align",
    }
    assert {n: s.dataset for n, s in names.METHODS.items() if s.dataset} == {d: d for d in names.DATASETS}
    assert names.spec("lamp") is not None and names.spec("lamp").dataset == ""  # type: ignore[union-attr]
    assert names.role_of("gravity-sft") == "ablation" and names.role_of("gravity") == "main"
    assert names.role_of("original") == "original" and names.role_of("my-baseline") is None


@pytest.mark.parametrize(
    ("call", "field", "says"),
    [
        (lambda: names.parse_method("telepathy"), "method", "unknown method 'telepathy'"),
        (lambda: names.parse_method(" ", "judge.focus_method"), "judge.focus_method", "is required"),
        (lambda: names.parse_method("gravity-no-luck", "--methods"), "--methods", "unknown ablation"),
        (lambda: names.method_to_wire("gravity-no-luck"), "method", "unknown ablation 'gravity-no-luck'"),
        (lambda: names.method_to_wire(common_pb2.METHOD_CUSTOM), "method", "needs a name"),
        (lambda: names.method_to_wire(99), "method", "not a gravity.v1.Method"),
        (lambda: names.method_from_wire(common_pb2.METHOD_UNSPECIFIED, ""), "method", "is required"),
        (
            lambda: names.method_from_wire(common_pb2.METHOD_GRAVITY, "no-values"),
            "method_variant",
            "must be empty",
        ),
        (
            lambda: names.method_from_wire(common_pb2.METHOD_GRAVITY_ABLATION, ""),
            "method_variant",
            "pair recipe",
        ),
        (
            lambda: names.method_from_wire(common_pb2.METHOD_GRAVITY_ABLATION, "no-luck"),
            "method_variant",
            "unknown ablation 'no-luck'",
        ),
        (
            lambda: names.method_from_wire(common_pb2.METHOD_CUSTOM, ""),
            "method_variant",
            "needs the method's name",
        ),
        (
            lambda: names.method_from_wire(common_pb2.METHOD_CUSTOM, "gravity"),
            "method_variant",
            "not METHOD_CUSTOM",
        ),
        (lambda: names.method_from_wire(99, ""), "method", "not a gravity.v1.Method"),
        (lambda: names.dataset_for_recipe("most"), "recipe", "unknown recipe"),
        (lambda: names.facet_to_wire("mood"), "facet", "unknown facet 'mood'"),
        (lambda: names.facet_from_wire(pairs_pb2.FACET_UNSPECIFIED), "facet", "not a known gravity.v1.Facet"),
    ],
)
def test_bad_names_and_wire_values_are_refused_naming_the_field(call, field: str, says: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as err:
        call()
    assert err.value.field == field and says in err.value.message, str(err.value)


def test_the_field_prefix_follows_the_message_path() -> None:
    request = generation_pb2.PersonalizeRequest(method=common_pb2.METHOD_GRAVITY_ABLATION)
    with pytest.raises(InvalidInput) as err:
        names.method_name(request, field="request.method")
    assert err.value.field == "request.method_variant"
    assert names.method_name(generation_pb2.PersonalizeRequest(), required=False) == ""


def test_known_names_parse_and_are_canonical() -> None:
    for name in [*names.METHODS, "gravity-no-values"]:
        assert names.parse_method(f" {name} ") == name


def test_facets_round_trip_and_cover_the_enum() -> None:
    assert names.FACETS == ("category", "summary", "values", "personality", "pref_align", "user_sft")
    wires = {names.facet_to_wire(f) for f in names.FACETS}
    assert wires == set(pairs_pb2.Facet.values()) - {pairs_pb2.FACET_UNSPECIFIED}
    for facet in names.FACETS:
        assert names.facet_from_wire(names.facet_to_wire(facet)) == facet
        assert pairs_pb2.Facet.Name(names.facet_to_wire(facet)) == "FACET_" + facet.upper()
