"""The LoRA adapters attached to the embedded model: one owner for loading, unloading and choosing them.

The first adapter wraps the base model in a peft model; later ones are added to it; removing the last takes
the LoRA layers out again. One model serves every owner in its process (a generator's registry, a bench, a
test's second generator), so a name loaded twice is held twice and stays attached until its last holder
unloads it. A call runs with one adapter active, with adapters disabled (the base model), or —
for a batch that mixes adapters — with peft routing each row to its own (``adapter_names``). Callers hold the
backend's lock around every method here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from gravity_core.errors import NotFound

BASE = "__base__"  # peft's name for "no adapter" in mixed-adapter batches
_EVERY: tuple[str | None] = ("\x00every adapter",)  # all LoRA layers on; peft routes rows (per_row)


class AdapterSet:
    def __init__(self, base_model: Any, pack: bool = False) -> None:
        self.base_model = base_model
        self.model: Any = base_model
        # pack each adapter's LoRA layers like the base model's (packed.py)
        self.pack = pack
        self._paths: dict[str, str] = {}
        # how many owners loaded each name; the last unload takes it off the model
        self._holders: dict[str, int] = {}
        # what the LoRA layers currently apply, as set by select(); None = unknown (peft changed it)
        self._selected: tuple[str | None] | None = None
        self._layers: list[Any] | None = None

    @property
    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def check(self, adapter: str | None) -> None:
        if adapter is not None and adapter not in self._paths:
            raise NotFound(
                "adapter", f"adapter {adapter!r} is not loaded (loaded: {sorted(self._paths) or 'none'})"
            )

    def load(self, name: str, path: str) -> None:
        from peft import PeftModel

        _quiet_peft_notices()
        if not os.path.isfile(os.path.join(path, "adapter_config.json")):
            raise NotFound("adapter", f"{path} has no adapter_config.json")
        if name in self._paths:
            # loaded again (a retrained adapter re-published in place): the new files replace the old
            self.model.delete_adapter(name)
        if self.model is self.base_model:
            self.model = PeftModel.from_pretrained(self.base_model, path, adapter_name=name)
        else:
            self.model.load_adapter(path, adapter_name=name)
        self.model.eval()
        self._forget_state()
        if self.pack:
            from gravity_core.llm.embedded.packed import pack_linears

            pack_linears(self.model)
        self._paths[name] = path
        self._holders[name] = self._holders.get(name, 0) + 1

    def unload(self, name: str) -> bool:
        """Drop one hold on ``name``; True when that was the last and the adapter left the model."""
        if name not in self._paths:
            raise NotFound("adapter", f"adapter {name!r} is not loaded")
        if self._holders[name] > 1:
            self._holders[name] -= 1
            return False
        if len(self._paths) == 1:
            # peft cannot run with zero adapters; take the LoRA layers out and go back to the plain model
            self.base_model = self.model.unload()
            self.model = self.base_model
            self.model.eval()
        else:
            _quiet_peft_notices()
            self.model.delete_adapter(name)
        del self._paths[name]
        del self._holders[name]
        self._forget_state()
        return True

    def _forget_state(self) -> None:
        self._selected = None
        self._layers = None

    @contextmanager
    def scope(self, adapter: str | None) -> Iterator[None]:
        """Run the model with one adapter active, or with adapters disabled for the base model.

        The LoRA layers are switched directly, like ``per_row``: peft's ``set_adapter`` does not re-enable
        layers that a base-model decode step switched off, and its ``disable_adapter`` leaves them off when
        they were off on entry, so a scoring call right after one would silently run the base model."""
        self.check(adapter)
        if self.model is not self.base_model:
            self._select((adapter,))
        yield

    @contextmanager
    def per_row(self, adapters: Sequence[str | None]) -> Iterator[None]:
        """Run the model with batch row i on ``adapters[i]``, for calls that bypass ``generate``/``forward``
        of the peft model (the serving engine calls the decoder directly). One adapter for all rows is
        switched on the LoRA layers directly, and only when it changes (peft's own switches walk and
        re-check the whole model, a cost paid on every decode step); a mix is routed by peft per row."""
        distinct = set(adapters)
        for adapter in distinct:
            self.check(adapter)
        if self.model is self.base_model:
            yield
            return
        if len(distinct) == 1:
            self._select((next(iter(distinct)),))
            yield
            return
        self._select(_EVERY)
        with self.model._enable_peft_forward_hooks(adapter_names=[a or BASE for a in adapters]):
            yield

    def _select(self, choice: tuple[str | None]) -> None:
        """Make the LoRA layers apply ``choice`` = (adapter,), (None,) for none, or ``_EVERY`` (enabled,
        for per-row routing)."""
        if choice == self._selected:
            return
        from peft.tuners.tuners_utils import BaseTunerLayer

        if self._layers is None:
            self._layers = [m for m in self.model.modules() if isinstance(m, BaseTunerLayer)]
        adapter = None if choice is _EVERY else choice[0]
        for layer in self._layers:
            layer.enable_adapters(choice is _EVERY or adapter is not None)
            if adapter is not None:
                layer.set_adapter(adapter)
        self._selected = choice


def _quiet_peft_notices() -> None:
    """Keep two peft notices out of the service's log: it asks the model through a name transformers 5
    deprecated (theirs to act on), and deleting the active adapter makes it name another one active, which
    means nothing here because every request sets its own adapter (``AdapterSet.scope``). An identical filter
    replaces the previous one, so calling this at every load adds nothing."""
    warnings.filterwarnings(
        "ignore", message=r".*is_gradient_checkpointing.*deprecated", category=FutureWarning
    )
    warnings.filterwarnings(
        "ignore", message=r"Adapter .* was active which is now deleted", category=UserWarning
    )
