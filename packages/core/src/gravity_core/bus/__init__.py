"""Kafka messaging: protobuf records, durable publishing, commit-after-write consumers, the dead-letter topic."""

from gravity_core.bus.kafka import Bus, ConsumerLoop, dead_letter
from gravity_core.bus.serde import decode, encode

__all__ = ["Bus", "ConsumerLoop", "dead_letter", "decode", "encode"]
