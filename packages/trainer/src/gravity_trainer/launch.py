"""``python -m gravity_trainer.launch``: the ``gravity train`` command as a module, for launchers.

accelerate starts one process per GPU with ``-m gravity_trainer.launch`` (see the package README and
``configs/``); the service starts training jobs the same way. Settings come from ``GRAVITY_CONFIG`` and
``GRAVITY_*`` variables; the options are those of ``gravity train``. Expected failures print one line and exit 2,
like the ``gravity`` command.
"""

from __future__ import annotations

import sys

from gravity_core.cli.main import main as gravity_main
from gravity_trainer.warm import FORK_RUNS, serve_forks


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == [FORK_RUNS]:  # the trainer service's zygote (see gravity_trainer.warm)
        serve_forks(train)
        return
    train(args)


def train(args: list[str]) -> None:
    gravity_main(["train", *args])


if __name__ == "__main__":
    main()
