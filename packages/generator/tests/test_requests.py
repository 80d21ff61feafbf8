"""Sampling parameters: server defaults, validation naming the field, greedy requests batchable together."""

import pytest

from gravity.v1 import common_pb2, generation_pb2
from gravity_core.errors import InvalidInput
from gravity_generator.requests import deadline_from, sampling_params
from gravity_generator.settings import GeneratorSettings

CFG = GeneratorSettings(max_new_tokens=100, max_new_tokens_limit=500, temperature=0.0, seed=7)


def request(**sampling: float) -> generation_pb2.PersonalizeRequest:
    r = generation_pb2.PersonalizeRequest(method=common_pb2.METHOD_GRAVITY)
    if sampling:
        r.sampling.CopyFrom(generation_pb2.SamplingParams(**sampling))
    return r


def test_defaults_and_overrides() -> None:
    p = sampling_params(request(), CFG)
    assert (p.temperature, p.top_p, p.max_tokens, p.seed) == (0.0, 1.0, 100, None)  # greedy drops the seed
    r = request(temperature=0.8, max_new_tokens=50)
    r.seed = 3
    p = sampling_params(r, CFG)
    assert (p.temperature, p.top_p, p.max_tokens, p.seed) == (pytest.approx(0.8), 1.0, 50, 3)
    assert sampling_params(request(temperature=0.5), CFG).seed == 7  # server default seed when sampling


@pytest.mark.parametrize(
    ("sampling", "field"),
    [
        ({"temperature": -0.1}, "sampling.temperature"),
        ({"temperature": 2.5}, "sampling.temperature"),
        ({"top_p": 1.5}, "sampling.top_p"),
        ({"max_new_tokens": -1}, "sampling.max_new_tokens"),
        ({"max_new_tokens": 501}, "sampling.max_new_tokens"),
    ],
)
def test_out_of_range_sampling_names_the_field(sampling: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        sampling_params(request(**sampling), CFG)
    assert err.value.field == field


def test_deadline_from_grpc_remaining_time() -> None:
    assert deadline_from(None) is None
    assert deadline_from(1e12) is None
    assert deadline_from(5.0) is not None
