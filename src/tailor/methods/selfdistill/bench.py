"""``tailor bench selfdistill``: time per optimisation step, self_distill vs further_pretrain.

Both steps run on the same model, the same real batch and in the same process, interleaved (so a
busy shared machine slows both alike), and we report medians. Expected ratio from the passes each
step does (Algorithm 1): an FPT step is one masked forward + backward (≈ 3 forward units); an SD
step adds an unmasked student forward + backward (3 units) and an unmasked teacher forward under
no_grad (1 unit), ≈ 7/3. We also give the ratio predicted from separately timed passes.
"""

from __future__ import annotations

import copy
import statistics
import time
from pathlib import Path

import torch

from ...engine.inputs import prepare
from ...zoo import models as model_zoo
from ...zoo.data import DataConfig, load_task
from .objectives import MaskedAutoEncodingObjective, MaskedLM, SelfDistillObjective, represent, unmasked_hidden

PASSES_EXPECTED = 7 / 3


def _setup(model_name: str, batch_size: int, max_length: int):
    data = prepare(load_task(DataConfig(name="tweets2016", train_size=batch_size, max_length=max_length), 0),
                   model_name, DataConfig(name="tweets2016", max_length=max_length))
    batch = data.collator([data.train[i] for i in range(batch_size)])
    student = model_zoo.load(model_name, "mlm")
    teacher = copy.deepcopy(student.base_model).eval().requires_grad_(False)
    tok = data.tokenizer
    backend = MaskedLM(mask_token_id=tok.mask_token_id, special_ids=tok.all_special_ids,
                       vocab_size=student.config.vocab_size)
    return student, teacher, backend, batch


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(out: Path, model_name: str = "minilm-l6", batch_size: int = 16, max_length: int = 48, repeats: int = 6) -> dict:
    """Measure and print the step-time table; returns the numbers (the CLI writes bench.json)."""
    torch.manual_seed(0)
    student, teacher, backend, batch = _setup(model_name, batch_size, max_length)
    student.train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=1e-5)
    objectives = {"further_pretrain": MaskedAutoEncodingObjective(backend),
                  "self_distill": SelfDistillObjective(backend)}

    def step(name: str):
        def go():
            objective = objectives[name]
            terms = objective.terms(student, batch, teacher)
            loss = sum(objective.weights[k] * v for k, v in terms.items())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        return go

    def fwd_bwd_masked():
        backend.loss(student, batch, backend.sample(student, batch)).backward()

    def fwd_bwd_unmasked():
        represent(*unmasked_hidden(student.base_model, batch), "cls").pow(2).sum().backward()

    def fwd_teacher():
        with torch.no_grad():
            unmasked_hidden(teacher, batch)

    passes = {"masked fwd+bwd": fwd_bwd_masked, "unmasked fwd+bwd": fwd_bwd_unmasked, "teacher fwd (no_grad)": fwd_teacher}
    for fn in (step("further_pretrain"), step("self_distill"), *passes.values()):  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in (*objectives, *passes)}
    for _ in range(repeats):
        for name in objectives:
            times[name].append(_timed(step(name)))
        for name, fn in passes.items():
            student.zero_grad(set_to_none=True)
            times[name].append(_timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    predicted = (med["masked fwd+bwd"] + med["unmasked fwd+bwd"] + med["teacher fwd (no_grad)"]) / med["masked fwd+bwd"]
    result = {
        "model": model_name, "batch": {"size": batch_size, "tokens": int(batch["input_ids"].shape[1])},
        "repeats": repeats, "threads": torch.get_num_threads(),
        "median_seconds": med, "all_seconds": times,
        "measured_ratio": med["self_distill"] / med["further_pretrain"],
        "expected_ratio_from_pass_count": PASSES_EXPECTED,
        "expected_ratio_from_timed_passes": predicted,
    }
    lines = [f"self_distill vs further_pretrain, {model_name}, batch {batch_size}x{result['batch']['tokens']} tokens, "
             f"{torch.get_num_threads()} threads, median of {repeats} interleaved steps",
             f"{'step / pass':<26}{'seconds':>10}"]
    lines += [f"{k:<26}{v:>10.3f}" for k, v in med.items()]
    lines += [f"measured SD/FPT step ratio: {result['measured_ratio']:.2f}",
              f"expected from pass count (7/3): {PASSES_EXPECTED:.2f}; from timed passes: {predicted:.2f}"]
    text = "\n".join(lines)
    print(text)
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "bench.md").write_text("```\n" + text + "\n```\n")
    return result
