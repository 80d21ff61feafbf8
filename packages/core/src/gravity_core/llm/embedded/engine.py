"""Continuous batching for the embedded model: requests join the running batch between decode steps.

One engine thread owns generation. Callers (``chat``, ``chat_batch``, ``stream_chat`` from any number of
threads) submit sequences and wait on their handles. Each turn of the loop takes new sequences into the
running set (up to ``max_batch``), drops cancelled ones, and runs ONE forward pass holding

* the next token of every decoding sequence (rows may use different LoRA adapters — peft routes each row
  to its own — and different sampling parameters), and
* prompt chunks of newly arrived sequences, up to ``step_tokens`` tokens in all. Prompts are cut on a fixed
  64-token grid; whole chunks already encoded for an earlier prompt with the same start are reused
  (prefix_cache.py); a prompt's last chunk yields its first new token.

A request arriving mid-generation therefore waits for one step, not for the batch to finish, a row that
finishes early frees its slot at once, and every pass reads the weights once for all the work it carries.
Every model call holds the backend lock, so choice scoring and adapter loading interleave between steps.
Greedy outputs do not depend on which requests shared the passes: see rows.py and packed.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from gravity_core.errors import NotFound, Unavailable
from gravity_core.llm.embedded.adapters import AdapterSet
from gravity_core.llm.embedded.loading import LoadedModel
from gravity_core.llm.embedded.prefix_cache import PrefixCache
from gravity_core.llm.embedded.rows import (
    ATTENTION,
    RowKV,
    Segment,
    invariant_row_counts,
    register_attention,
)
from gravity_core.llm.types import Completion, GenerationParams, Usage
from gravity_core.logging import get_logger

log = get_logger(__name__)

PREFILL_CHUNK = 64
# Tokens per forward pass: every decoding sequence's next token, then prompt chunks up to this budget. One
# pass reads all the weights once, so encoding prompts together with decoding is what makes it cheap.
STEP_TOKENS = 512
# An idle engine ends its thread after this long (the next request starts another): a running thread holds
# the engine and so the model, and a client dropped by its last holder must not stay pinned (~1 GB each).
IDLE_EXIT_S = 30.0


class Cancelled(Unavailable):
    """The caller gave up on a sequence before it finished."""


@dataclass
class EngineStats:
    decode_steps: int = 0
    decode_rows: int = 0
    prefill_chunks: int = 0
    sequences: int = 0
    joined_running: int = 0  # sequences admitted while others were already decoding

    @property
    def mean_batch(self) -> float:
        return self.decode_rows / self.decode_steps if self.decode_steps else 0.0


@dataclass
class _Piece:
    """Tokens of one sequence in one forward pass: a prompt chunk, or the token decoded last step."""

    seq: Sequence_
    tokens: list[int]
    start: int
    logits: bool  # the last token's logits pick the sequence's next token

    @property
    def decode(self) -> bool:
        return self.start >= len(self.seq.ids)


@dataclass
class EncodedPrompt:
    """A prompt encoded by the engine: its keys and values per layer, (kv_heads, tokens, head_dim), and the
    next-token logits after its last token. ``reused`` tokens came from the prefix cache."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    logits: torch.Tensor
    reused: int


@dataclass
class Sequence_:
    ids: list[int]
    params: GenerationParams
    adapter: str | None
    truncated: bool = False
    # encode the prompt and keep its keys and values instead of generating (see ContinuousEngine.encode)
    prefill_only: bool = False
    on_delta: Callable[[str], None] | None = None
    on_done: Callable[[], None] | None = None
    kv: RowKV | None = None
    generated: list[int] = field(default_factory=list)
    next_token: int | None = None
    sampler: torch.Generator | None = None
    emitted: str = ""
    finish: str = ""
    cancelled: bool = False
    result: Completion | None = None
    encoded: EncodedPrompt | None = None
    reused: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def prefilled(self) -> bool:
        return self.kv is not None and self.kv.length >= len(self.ids)


class Handle:
    """A submitted sequence: wait for its completion, or cancel it."""

    def __init__(self, seq: Sequence_, engine: ContinuousEngine) -> None:
        self._seq = seq
        self._engine = engine

    def result(self, timeout: float | None = None) -> Completion:
        if not self._seq.done.wait(timeout):
            raise TimeoutError("generation did not finish in time")
        if self._seq.error is not None:
            raise self._seq.error
        assert self._seq.result is not None
        return self._seq.result

    def cancel(self) -> None:
        self._engine.cancel(self._seq)

    @property
    def done(self) -> bool:
        return self._seq.done.is_set()


class ContinuousEngine:
    def __init__(
        self,
        loaded: LoadedModel,
        adapters: AdapterSet,
        lock: threading.RLock,
        usage: Usage,
        max_batch: int,
        prefix_cache_bytes: int = 256 << 20,
        chunk: int = PREFILL_CHUNK,
        step_tokens: int = STEP_TOKENS,
    ) -> None:
        self.loaded = loaded
        self.tokenizer = loaded.tokenizer
        self.adapters = adapters
        self.lock = lock
        self.usage = usage
        self.max_batch = max(1, max_batch)
        self.chunk = chunk
        self.step_tokens = step_tokens
        self.prefix_cache = PrefixCache(prefix_cache_bytes, chunk)
        self.stats = EngineStats()
        config = loaded.model.config
        self._layers = int(config.num_hidden_layers)
        self._kv_heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        self._head_dim = int(
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        self._dtype = loaded.model.dtype
        register_attention()
        loaded.model.set_attn_implementation(ATTENTION)
        # Packed linear layers compute every row alike at any batch size; the BLAS fallback needs the
        # batch padded to a size it treats alike (rows.py).
        self._row_sizes = (
            []
            if loaded.packed
            else invariant_row_counts(int(config.hidden_size), int(config.intermediate_size or 256))
        )
        self._waiting: deque[Sequence_] = deque()
        self._running: list[Sequence_] = []
        self._cond = threading.Condition()
        self._closed = False
        self._parked = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ callers
    def submit(
        self,
        ids: list[int],
        params: GenerationParams,
        adapter: str | None,
        truncated: bool = False,
        on_delta: Callable[[str], None] | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> Handle:
        """Queue a prompt (token ids); ``on_delta`` gets text pieces, ``on_done`` runs once it ended."""
        seq = Sequence_(list(ids), params, adapter, truncated, on_delta=on_delta, on_done=on_done)
        if params.max_tokens <= 0:
            seq.result = self._completion(seq)
            self._signal(seq)
            return Handle(seq, self)
        if not params.greedy:
            seq.sampler = torch.Generator(device="cpu")
            if params.seed is not None:
                seq.sampler.manual_seed(int(params.seed))
            else:
                seq.sampler.seed()
        self._enqueue(seq)
        return Handle(seq, self)

    def encode(self, ids: list[int], adapter: str | None) -> EncodedPrompt:
        """Encode a prompt as generation would (same chunks, same prefix cache) and return its keys, values
        and next-token logits. Its whole chunks stay in the prefix cache, so a later prompt that starts the
        same way (a reader's summary after their scoring questions) skips them. Call without the backend
        lock: the engine thread needs it."""
        if not ids:
            raise ValueError("nothing to encode")
        seq = Sequence_(
            list(ids), GenerationParams(max_tokens=1, temperature=0.0), adapter, prefill_only=True
        )
        self._enqueue(seq)
        seq.done.wait()
        if seq.error is not None:
            raise seq.error
        assert seq.encoded is not None
        return seq.encoded

    def _enqueue(self, seq: Sequence_) -> None:
        with self._cond:
            if self._closed:
                raise Unavailable("the embedded model is shutting down")
            self._waiting.append(seq)
            self._start()
            self._cond.notify_all()

    def cancel(self, seq: Sequence_) -> None:
        with self._cond:
            seq.cancelled = True
            self._cond.notify_all()

    def depth(self) -> int:
        return len(self._waiting)

    def running(self) -> int:
        return len(self._running)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(30.0)

    def park(self, timeout: float = 5.0) -> None:
        """End the engine thread as soon as it has nothing to do, without waiting for ``IDLE_EXIT_S`` (waits up
        to ``timeout`` for an idle one to end); the next request starts a new one. What a long-lived process
        calls before collecting the models it dropped."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._parked = True
            self._cond.notify_all()
            busy = not self._idle()
        if not busy:
            thread.join(timeout)

    @property
    def serving(self) -> bool:
        """Whether the engine thread is running (it ends when idle and starts again with the next request)."""
        with self._cond:
            return self._thread is not None and self._thread.is_alive()

    def forget_prefixes(self, adapter: str | None = None) -> None:
        self.prefix_cache.forget(adapter)

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="embedded-engine", daemon=True)
            self._thread.start()

    def _idle(self) -> bool:
        return not self._waiting and not self._running and not self._closed

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._idle():
                    if self._parked or (not self._cond.wait(IDLE_EXIT_S) and self._idle()):
                        # cleared under the lock, so a request queued from now on starts a new thread
                        self._thread = None
                        self._parked = False
                        return
                if self._closed:
                    for seq in [*self._waiting, *self._running]:
                        self._fail(seq, Unavailable("the embedded model is shutting down"))
                    self._waiting.clear()
                    self._running.clear()
                    return
                decoding = any(s.prefilled for s in self._running)
                while self._waiting and len(self._running) < self.max_batch:
                    seq = self._waiting.popleft()
                    self._running.append(seq)
                    self.stats.sequences += 1
                    self.stats.joined_running += int(decoding)
                for seq in [s for s in self._running if s.cancelled]:
                    self._running.remove(seq)
                    self._fail(seq, Cancelled("the request was cancelled"))
                for seq in [s for s in self._waiting if s.cancelled]:
                    self._waiting.remove(seq)
                    self._fail(seq, Cancelled("the request was cancelled"))
            try:
                with torch.inference_mode():
                    self._step()
            except BaseException as exc:  # never leave a caller waiting; the engine keeps serving
                log.exception("engine_step_failed")
                error = exc if isinstance(exc, Exception) else RuntimeError(str(exc))
                with self._cond:
                    for seq in list(self._running):
                        self._running.remove(seq)
                        self._fail(seq, error)

    def _retire(self, seq: Sequence_) -> None:
        with self._cond:
            if seq in self._running:
                self._running.remove(seq)
        seq.result = self._completion(seq)
        self.usage.add(len(seq.ids), len(seq.generated))
        self._signal(seq)

    def _fail(self, seq: Sequence_, error: BaseException) -> None:
        seq.error = error
        self._signal(seq)

    def _signal(self, seq: Sequence_) -> None:
        seq.kv = None
        seq.done.set()
        if seq.on_done is not None:
            seq.on_done()

    # ------------------------------------------------------------------ one step
    def _step(self) -> None:
        """One forward pass: the next token of every decoding sequence, plus prompt chunks up to the budget."""
        pieces: list[_Piece] = []
        budget = self.step_tokens
        for seq in list(self._running):
            if seq.next_token is not None and self._usable(seq):
                assert seq.kv is not None
                pieces.append(_Piece(seq, [seq.next_token], seq.kv.length, True))
                budget -= 1
        for seq in list(self._running):
            if budget <= 0:
                break
            if seq.next_token is not None or seq.prefilled or not self._usable(seq):
                continue
            if seq.kv is None:
                seq.kv = RowKV(
                    self._layers,
                    self._kv_heads,
                    self._head_dim,
                    self._dtype,
                    self.loaded.device,
                    len(seq.ids) + (0 if seq.prefill_only else seq.params.max_tokens),
                )
                hit = self.prefix_cache.lookup(seq.adapter, seq.ids)
                if hit is not None:
                    seq.kv.load_prefix(hit.keys, hit.values, hit.tokens)
                    seq.reused = hit.tokens
            position = seq.kv.length
            while position < len(seq.ids):
                # chunks sit on a fixed grid, so a prompt is always encoded in the same pieces (prefix reuse
                # and scheduling never change its arithmetic)
                end = min(len(seq.ids), (position // self.chunk + 1) * self.chunk)
                if end - position > budget and pieces:
                    break
                pieces.append(_Piece(seq, seq.ids[position:end], position, end == len(seq.ids)))
                budget -= end - position
                position = end
        if not pieces:
            return
        logits = self._forward(pieces)
        decoding = sum(1 for p in pieces if p.decode)
        if decoding:
            self.stats.decode_steps += 1
            self.stats.decode_rows += decoding
        self.stats.prefill_chunks += len(pieces) - decoding
        for piece in pieces:
            assert piece.seq.kv is not None
            piece.seq.kv.length = max(piece.seq.kv.length, piece.start + len(piece.tokens))
        row = 0
        for piece in pieces:
            if not piece.logits:
                continue
            seq = piece.seq
            if not piece.decode:  # the prompt is encoded: keep its whole chunks for later prompts
                whole = (len(seq.ids) // self.chunk) * self.chunk
                if whole and self.prefix_cache.enabled and seq.kv is not None:
                    keys, values = seq.kv.prefix(whole)
                    self.prefix_cache.store(seq.adapter, seq.ids, keys, values)
            seq.next_token = None
            if seq.prefill_only:
                self._keep_encoded(seq, logits[row])
            else:
                self._accept(seq, self._sample(seq, logits[row]))
            row += 1

    def _keep_encoded(self, seq: Sequence_, logits: torch.Tensor) -> None:
        """Hand an encoded prompt's keys, values and logits to its caller (who counts its usage)."""
        assert seq.kv is not None
        n = len(seq.ids)
        seq.encoded = EncodedPrompt(
            [k[:, :n] for k in seq.kv.keys], [v[:, :n] for v in seq.kv.values], logits, seq.reused
        )
        with self._cond:
            if seq in self._running:
                self._running.remove(seq)
        self._signal(seq)

    def _usable(self, seq: Sequence_) -> bool:
        """False (and the sequence failed) when its adapter was unloaded meanwhile."""
        try:
            self.adapters.check(seq.adapter)
            return True
        except NotFound as exc:
            with self._cond:
                if seq in self._running:
                    self._running.remove(seq)
            self._fail(seq, exc)
            return False

    def _accept(self, seq: Sequence_, token: int) -> None:
        """Take a sampled token: finish on end-of-turn, length or a stop string, else feed it next step."""
        if token in self.loaded.eos_ids:
            seq.finish = "stop"
        else:
            seq.generated.append(token)
            if seq.on_delta is not None or seq.params.stop:
                text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
                if seq.params.stop and any(s and s in text for s in seq.params.stop):
                    seq.finish = "stop"
                if seq.on_delta is not None and not text.endswith("\ufffd"):
                    delta, seq.emitted = text[len(seq.emitted) :], text
                    if delta:
                        seq.on_delta(delta)
            if not seq.finish and len(seq.generated) >= seq.params.max_tokens:
                seq.finish = "length"
        if seq.finish:
            self._retire(seq)
        else:
            seq.next_token = token

    # ------------------------------------------------------------------ model
    def _padded_rows(self, n: int) -> int:
        """The smallest row count >= n whose rows the BLAS computes like any other (see rows.py)."""
        for size in self._row_sizes:
            if size >= n:
                return size
        return n

    def _forward(self, pieces: Sequence[_Piece]) -> torch.Tensor:
        """Next-token logits of the pieces that ask for them, in order; every token is one batch row."""
        device = self.loaded.device
        ids = [t for p in pieces for t in p.tokens]
        positions = [p.start + j for p in pieces for j in range(len(p.tokens))]
        adapters = [p.seq.adapter for p in pieces for _ in p.tokens]
        segments, keep, offset = [], [], 0
        for p in pieces:
            assert p.seq.kv is not None
            segments.append(Segment(p.seq.kv, offset, len(p.tokens), p.start))
            offset += len(p.tokens)
            if p.logits:
                keep.append(offset - 1)
        pad = self._padded_rows(len(ids)) - len(ids)  # padding tokens belong to no segment
        fill = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor(ids + [fill] * pad, dtype=torch.long, device=device)[:, None]
        position_ids = torch.tensor(positions + [0] * pad, dtype=torch.long, device=device)[:, None]
        with self.lock:
            model = self.adapters.base_model
            with self.adapters.per_row(adapters + [adapters[0]] * pad):
                hidden = model.get_decoder()(
                    input_ids=input_ids, position_ids=position_ids, use_cache=False, gravity_rows=segments
                ).last_hidden_state
            logits = model.get_output_embeddings()(hidden[keep, 0])
        return logits.float()

    def _sample(self, seq: Sequence_, logits: torch.Tensor) -> int:
        params = seq.params
        if params.greedy:
            return int(torch.argmax(logits))
        scaled = logits / max(params.temperature, 1e-5)
        probs = torch.softmax(scaled, dim=-1)
        if params.top_p < 1.0:
            ordered, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(ordered, dim=-1)
            drop = cumulative - ordered > params.top_p
            ordered[drop] = 0.0
            probs = torch.zeros_like(probs).scatter_(0, order, ordered)
        return int(torch.multinomial(probs, 1, generator=seq.sampler))

    def _completion(self, seq: Sequence_) -> Completion:
        from gravity_core.llm.embedded.generation import apply_stop

        text = self.tokenizer.decode(seq.generated, skip_special_tokens=True)
        text, stopped = apply_stop(text, seq.params.stop)
        return Completion(
            text.strip(),
            len(seq.ids),
            len(seq.generated),
            self.loaded.name,
            seq.adapter,
            "stop" if stopped else (seq.finish or "length"),
            truncated_prompt=seq.truncated,
        )
