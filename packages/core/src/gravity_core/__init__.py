"""gravity_core: the contract and the shared parts every GRAVITY package builds on (DESIGN.md)."""

import os

# Every gravity process starts children while its gRPC channels are open: the stack starts the services, the
# broker starts Tansu, the trainer its zygote, the judge its pool. grpcio >= 1.80 crashes such children with
# SIGSEGV between fork and exec when its fork handlers restart the poller in them (grpc/grpc#43055; ~5% of
# children here with a few reconnecting channels). No gravity child uses gRPC before it execs, so the fork
# handlers do nothing for us. grpc reads this when it is first imported, hence here, before any module of ours
# imports it; a value you set is kept.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
