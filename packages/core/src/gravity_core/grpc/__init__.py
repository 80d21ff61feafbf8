"""One gRPC scaffold for every service: health, reflection, validation errors, auth, TLS, shutdown."""

from gravity_core.grpc.client import call_with_retry, make_channel, wait_for_serving
from gravity_core.grpc.server import ServiceHost, check_deadline
from gravity_core.grpc.validation import require, require_field

__all__ = [
    "ServiceHost",
    "call_with_retry",
    "check_deadline",
    "make_channel",
    "require",
    "require_field",
    "wait_for_serving",
]
