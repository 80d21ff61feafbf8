"""Hot-loading adapters from gravity.adapters.v1 on the embedded broker: a method becomes available when its
AdapterRef arrives, a newer one replaces it atomically, a bad one is dead-lettered and the old one stays.
A profile published to gravity.profiles.v1 becomes servable too."""

import shutil
from pathlib import Path

import grpc
import httpx
import pytest
from gravity_testing import wait_until

from gravity.v1 import common_pb2
from gravity_core.artifacts import ArtifactStore
from gravity_core.bus import Bus, decode
from gravity_core.clients import GeneratorCallError, GeneratorClient
from gravity_core.grpc import make_channel, wait_for_serving
from gravity_core.names import method_name
from gravity_generator.service import start_generator

pytestmark = [pytest.mark.model, pytest.mark.broker]


def serving_adapter(client: GeneratorClient, method: str) -> str:
    info = {method_name(m): m for m in client.list_methods()}.get(method)
    return info.adapter if info is not None and info.available else ""


def test_adapters_arrive_switch_and_bad_refs_go_to_the_dlq(
    broker, generator_settings, trained_adapters: dict[str, Path], make_adapter_ref, profiles, tmp_path: Path
) -> None:
    settings = generator_settings(broker=broker, **{"generator.profiles_path": ""})
    bus = Bus(settings.kafka, "test-trainer")
    bus.ensure_topics()
    topics = settings.kafka.topics
    store = ArtifactStore.from_settings(settings)
    running = start_generator(settings)
    try:
        wait_for_serving(make_channel(running.target), timeout_s=600)
        client = GeneratorClient(running.target)
        profile = profiles[0]
        bus.publish(topics.profiles, profile.user_id, profile)
        wait_until(
            lambda: profile.user_id in running.service.app.profiles, 90, "the profile to arrive", every_s=0.25
        )
        request = {
            "user_id": profile.user_id,
            "title": "Tide",
            "description": "A keeper tends a lighthouse.",
            "method": "gravity",
        }

        # before any adapter: listed as unavailable, requests fail cleanly
        assert serving_adapter(client, "gravity") == ""
        with pytest.raises(GeneratorCallError) as err:
            client.personalize(**request)
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION and "not loaded" in err.value.details
        # the same failure over HTTP: the server's state, not the request (409, OpenAI's error shape)
        over_http = httpx.post(
            f"{running.service.http.url}/v1/chat/completions",
            json={
                "model": "gravity",
                "user": profile.user_id,
                "messages": [{"role": "user", "content": "Describe it."}],
                "gravity": {"book": {"title": "Tide", "description": "A keeper tends a lighthouse."}},
            },
            timeout=60,
        )
        error = over_http.json()["error"]
        assert over_http.status_code == 409 and error["code"] == "adapter_not_loaded"
        assert "not loaded" in error["message"]

        # v1 arrives
        v1_dir = store.path("adapters/v1")
        shutil.copytree(trained_adapters["gravity"], v1_dir)
        bus.publish(topics.adapters, "gravity", make_adapter_ref(v1_dir, "gravity", "gravity-v1", 1_000))
        wait_until(
            lambda: serving_adapter(client, "gravity") == "gravity-v1",
            90,
            "gravity-v1 to serve",
            every_s=0.25,
        )
        assert client.personalize(**request).adapter == "gravity-v1"

        # a tampered v2: dead-lettered, v1 keeps serving
        bad_dir = store.path("adapters/bad")
        shutil.copytree(trained_adapters["pref-align"], bad_dir)
        bad = make_adapter_ref(bad_dir, "gravity", "gravity-bad", 2_000)
        (bad_dir / "adapter_model.safetensors").write_bytes(b"tampered")
        bus.publish(topics.adapters, "gravity", bad)
        # a well-formed adapter outside the artifact store: never read, dead-lettered
        outside = tmp_path / "outside"
        shutil.copytree(trained_adapters["pref-align"], outside)
        bus.publish(
            topics.adapters, "gravity", make_adapter_ref(outside, "gravity", "gravity-outside", 2_500)
        )
        dlq = bus.consumer(topics.dlq, "dlq-reader")
        letters: list[common_pb2.DeadLetter] = []

        def dead_lettered() -> bool:
            for records in dlq.poll(timeout_ms=500).values():
                letters.extend(decode(r.value, common_pb2.DeadLetter, r.headers) for r in records)
            return {"checksum_mismatch", "bad_uri"} <= {letter.reason for letter in letters}

        wait_until(dead_lettered, 90, "the bad adapter ref to be dead-lettered", every_s=0.25)
        dlq.close()
        letter = next(x for x in letters if x.reason == "checksum_mismatch")
        assert (
            letter.service == "generator"
            and letter.source_topic == topics.adapters
            and "gravity-bad" not in serving_adapter(client, "gravity")
        )
        outside_letter = next(x for x in letters if x.reason == "bad_uri")
        assert "outside the artifact store" in outside_letter.detail
        assert "gravity-outside" not in running.service.app.registry.llm.info.adapters
        assert client.personalize(**request).adapter == "gravity-v1"

        # a good v2 (a different trained adapter): the method switches, v1 is unloaded from the model
        v2_dir = store.path("adapters/v2")
        shutil.copytree(trained_adapters["pref-align"], v2_dir)
        bus.publish(topics.adapters, "gravity", make_adapter_ref(v2_dir, "gravity", "gravity-v2", 3_000))
        wait_until(
            lambda: serving_adapter(client, "gravity") == "gravity-v2",
            90,
            "gravity-v2 to serve",
            every_s=0.25,
        )
        assert client.personalize(**request).adapter == "gravity-v2"
        writer = running.service.app.registry.llm
        assert "gravity-v2" in writer.info.adapters and "gravity-v1" not in writer.info.adapters

        # an ablation adapter becomes a method of its own, served with the GRAVITY prompt
        abl_dir = store.path("adapters/ablation")
        shutil.copytree(trained_adapters["user-sft"], abl_dir)
        bus.publish(
            topics.adapters,
            "gravity-no-values",
            make_adapter_ref(abl_dir, "gravity-no-values", "abl-1", 4_000),
        )
        wait_until(
            lambda: serving_adapter(client, "gravity-no-values") == "abl-1",
            90,
            "abl-1 to serve",
            every_s=0.25,
        )
        assert client.personalize(**{**request, "method": "gravity-no-values"}).adapter == "abl-1"
        client.close()
    finally:
        running.stop()
        bus.close()
    assert (
        "gravity-v2" not in running.service.app.registry.llm.info.adapters
    )  # stopping gives the memory back
