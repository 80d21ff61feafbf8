"""`gravity bench trainer`: the same DPO steps on the same pairs, TRL defaults versus this trainer's setup.

Both runs start from the same base model and LoRA initialisation, see the same batches in the same order
(TRL's seeded random sampler) and use fp32, so their loss curves must agree; the benchmark prints the largest
difference. What differs is how the work is done:

* baseline (TRL defaults): gradient checkpointing on, a reference forward every step (adapter disabled),
  ``prompt + chosen`` and ``prompt + rejected`` as two padded sequences, logits over every position;
* tuned (this trainer): gradient checkpointing off for a small model, reference log-probabilities
  precomputed once, one shared-prompt forward per pair with the LM head on completion tokens only.

TRL's bf16 default is replaced by fp32 in both runs: bf16 is ~14x slower on CPUs without native support and
would make the curves incomparable. The tuned run's time includes its reference precomputation.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from gravity_core import names
from gravity_core.cli.common import CliContext, pass_cli, summary_table


@dataclass
class BenchRun:
    name: str
    seconds: float
    pairs: int
    losses: list[float]
    peak_rss_mb: float
    tokens: int = 0

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0


@dataclass
class BenchResult:
    baseline: BenchRun
    tuned: BenchRun
    max_loss_diff: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def speedup(self) -> float:
        return self.tuned.pairs_per_s / self.baseline.pairs_per_s if self.baseline.pairs_per_s else 0.0


def synthetic_pairs(n: int, seed: int = 13) -> list[dict[str, Any]]:
    """GRAVITY-shaped value pairs: persona preamble + a question; two scenario-like answers."""
    from gravity_core.values import load_seed_statements

    statements = load_seed_statements()
    rng = random.Random(seed)
    countries = ("USA", "Brazil", "India", "Japan")
    ages = ("young", "middle-aged", "senior")
    genders = ("female", "male")
    traits = ("High Openness, Low Extraversion", "Low Openness, High Conscientiousness", "High Agreeableness")
    rows = []
    for i in range(n):
        values = " ".join(s.text for s in rng.sample(statements, 3))
        pro, con = rng.sample(statements, 2)
        prompt = (
            f"You are a {rng.choice(ages)} {rng.choice(genders)} from {rng.choice(countries)}. You enjoy reading "
            f"Historical Fiction, Poetry. You have the following values: {values} and personality traits: "
            f"{rng.choice(traits)}. Which of these two situations feels closer to how you see the world?"
        )
        rows.append(
            {
                "prompt": [{"role": "user", "content": prompt}],
                "chosen": [
                    {"role": "assistant", "content": f"Someone who believes that {pro.text.lower()} (#{i})"}
                ],
                "rejected": [
                    {"role": "assistant", "content": f"Someone who believes that {con.text.lower()}"}
                ],
            }
        )
    return rows


def pairs_from_dir(directory: Path, dataset: str, n: int, seed: int = 13) -> list[dict[str, Any]]:
    from gravity_core.datasets import load_manifest
    from gravity_trainer.data import load_pair_set

    pairs = load_pair_set(directory, load_manifest(directory), dataset, "dpo")
    rows = random.Random(seed).sample(pairs.rows, min(n, len(pairs.rows)))
    return [r.conversational("dpo") for r in rows]


class _PeakRss:
    """Samples this process's resident set size while a phase runs (ru_maxrss only ever grows)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _rss_kb())
            self._stop.wait(self.interval_s)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _rss_kb())


def _rss_kb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def compare(
    model_path: str,
    rows: list[dict[str, Any]],
    steps: int,
    batch_size: int,
    workdir: Path,
    max_length: int = 1024,
    lora_r: int = 16,
    learning_rate: float | None = None,
) -> BenchResult:
    """Run ``steps`` DPO steps twice on ``rows`` (baseline, then tuned) and compare."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import DPOConfig, DPOTrainer

    from gravity_trainer.packing import SharedPromptCollator
    from gravity_trainer.recipes import GravityDPO, LoraSettings
    from gravity_trainer.trainers import SharedPromptDPOTrainer, lora_config

    recipe = GravityDPO(lora=LoraSettings(r=lora_r, alpha=2 * lora_r))
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = Dataset.from_list(rows[: steps * batch_size])

    def config(name: str, **tuned: Any) -> DPOConfig:
        return DPOConfig(
            output_dir=str(workdir / name),
            per_device_train_batch_size=batch_size,
            max_steps=steps,
            learning_rate=learning_rate or recipe.learning_rate,
            beta=recipe.beta,
            max_length=max_length,
            bf16=False,
            use_cpu=not torch.cuda.is_available(),
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            disable_tqdm=True,
            seed=recipe.seed,
            **tuned,
        )

    def fresh_model() -> Any:
        return AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)

    # Warm the kernels once so neither run pays for first-call setup.
    warm = fresh_model()
    with torch.no_grad():
        warm(torch.ones((2, 64), dtype=torch.long))
    del warm

    runs = []
    for name in ("baseline", "tuned"):
        model = fresh_model()
        with _PeakRss() as rss:
            started = time.perf_counter()
            if name == "baseline":
                trainer = DPOTrainer(
                    model=model,
                    args=config(name),
                    train_dataset=dataset,
                    processing_class=tokenizer,
                    peft_config=lora_config(recipe),
                )
            else:
                trainer = SharedPromptDPOTrainer(
                    model=model,
                    args=config(
                        name,
                        gradient_checkpointing=False,
                        precompute_ref_log_probs=True,
                        prediction_loss_only=True,
                    ),
                    data_collator=SharedPromptCollator(tokenizer.pad_token_id, max_length),
                    train_dataset=dataset,
                    processing_class=tokenizer,
                    peft_config=lora_config(recipe),
                )
            trainer.remove_callback(PrinterCallback)
            trainer.train()
            seconds = time.perf_counter() - started
        losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
        tokens = int(max((e.get("num_tokens", 0) for e in trainer.state.log_history), default=0))
        runs.append(BenchRun(name, seconds, steps * batch_size, losses, rss.peak_kb / 1024, tokens))
        del trainer, model
    baseline, tuned = runs
    diff = max(
        (abs(a - b) for a, b in zip(baseline.losses, tuned.losses, strict=False)), default=float("nan")
    )
    return BenchResult(baseline, tuned, diff)


@click.command()
@click.option("--steps", default=6, show_default=True, help="DPO optimizer steps per run.")
@click.option("--batch-size", default=4, show_default=True, help="Pairs per step.")
@click.option("--max-length", default=1024, show_default=True, help="Token cap per prompt + completion.")
@click.option("--pairs", "pairs_dir", type=click.Path(file_okay=False), default=None, help="Use real shards.")
@click.option("--dataset", default=names.GRAVITY, show_default=True, help="Dataset in --pairs.")
@click.option("--base-model", default=None, help="Default: the writer role's model.")
@pass_cli
def run(
    cli: CliContext,
    steps: int,
    batch_size: int,
    max_length: int,
    pairs_dir: str | None,
    dataset: str,
    base_model: str | None,
) -> None:
    """Pairs/s of TRL's default DPO setup vs this trainer's, same steps and pairs, with loss-curve agreement."""
    import tempfile

    from gravity_core.llm.models import resolve_model_path
    from gravity_trainer.run import quiet_libraries

    quiet_libraries()
    model = base_model or cli.settings.llm.role("writer").model
    needed = steps * batch_size
    rows = pairs_from_dir(Path(pairs_dir), dataset, needed) if pairs_dir else synthetic_pairs(needed)
    if len(rows) < needed:
        raise click.UsageError(f"need {needed} pairs for {steps} steps of {batch_size}, have {len(rows)}")
    with tempfile.TemporaryDirectory(prefix="gravity-bench-trainer-") as tmp:
        result = compare(resolve_model_path(model), rows, steps, batch_size, Path(tmp), max_length)
    b, t = result.baseline, result.tuned
    click.echo(
        summary_table(
            f"DPO on {model}: {steps} steps x {batch_size} pairs ({'shards' if pairs_dir else 'synthetic pairs'})",
            [
                (
                    "TRL defaults (ckpt on, ref forward each step, 2 sequences/pair)",
                    f"{b.pairs_per_s:.3f}",
                    f"{b.seconds:.1f}",
                    f"{b.peak_rss_mb:.0f}",
                ),
                (
                    "tuned (ckpt off, precomputed ref, shared prompt, head on completions)",
                    f"{t.pairs_per_s:.3f}",
                    f"{t.seconds:.1f}",
                    f"{t.peak_rss_mb:.0f}",
                ),
            ],
            headers=["setup", "pairs/s", "seconds", "peak RSS MB"],
        )
    )
    click.echo(f"speedup: {result.speedup:.2f}x (goal >= 2x)")
    click.echo(f"loss curves: max |baseline - tuned| = {result.max_loss_diff:.2e} over {len(b.losses)} steps")
    click.echo("baseline losses: " + " ".join(f"{x:.5f}" for x in b.losses))
    click.echo("tuned losses:    " + " ".join(f"{x:.5f}" for x in t.losses))
