"""``tailor bench selfdistill``: time per optimisation step, self_distill vs further_pretrain.

Both steps run on the same model, the same real batch and in the same process, interleaved (so a
busy shared machine slows both alike), and we report medians. Expected ratio from the passes each
step does (Algorithm 1): an FPT step is one masked forward + backward (≈ 3 forward units); an SD
step adds an unmasked student forward + backward (3 units) and an unmasked teacher forward under
no_grad (1 unit), ≈ 7/3 for the passes alone. Both steps also pay the same optimiser update (AdamW
over every parameter, word embeddings included), which pulls the whole-step ratio below 7/3; so we
also time each pass and the update separately and give the ratio they predict.
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
    data = prepare(
        load_task(DataConfig(name="tweets2016", train_size=batch_size, max_length=max_length), 0),
        model_name,
        DataConfig(name="tweets2016", max_length=max_length),
    )
    batch = data.collator([data.train[i] for i in range(batch_size)])
    student = model_zoo.load(model_name, "mlm")
    teacher = copy.deepcopy(student.base_model).eval().requires_grad_(False)
    tok = data.tokenizer
    backend = MaskedLM(
        mask_token_id=tok.mask_token_id, special_ids=tok.all_special_ids, vocab_size=student.config.vocab_size
    )
    return student, teacher, backend, batch


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(out: Path, model_name: str = "minilm-l6", batch_size: int = 16, max_length: int = 48, repeats: int = 3) -> dict:
    """Measure and print the step-time table; returns the numbers (the CLI writes bench.json)."""
    torch.manual_seed(0)
    student, teacher, backend, batch = _setup(model_name, batch_size, max_length)
    student.train()
    optimiser = torch.optim.AdamW(student.parameters(), lr=1e-5)
    objectives = {
        "further_pretrain": MaskedAutoEncodingObjective(backend),
        "self_distill": SelfDistillObjective(backend),
    }

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

    passes = {
        "masked fwd+bwd": fwd_bwd_masked,
        "unmasked fwd+bwd": fwd_bwd_unmasked,
        "teacher fwd (no_grad)": fwd_teacher,
    }
    for fn in (step("further_pretrain"), step("self_distill"), *passes.values()):  # warm-up
        fn()
    update = "optimizer update"
    times: dict[str, list[float]] = {k: [] for k in (*objectives, *passes, update)}
    for _ in range(repeats):
        for name in objectives:
            times[name].append(_timed(step(name)))
        for name, fn in passes.items():
            student.zero_grad(set_to_none=True)
            times[name].append(_timed(fn))
            if name == "masked fwd+bwd":  # the update on the gradients that pass just left
                times[update].append(_timed(optimiser.step))
    med = {k: statistics.median(v) for k, v in times.items()}
    fpt_parts = med["masked fwd+bwd"] + med[update]
    predicted = (fpt_parts + med["unmasked fwd+bwd"] + med["teacher fwd (no_grad)"]) / fpt_parts
    result = {
        "model": model_name,
        "batch": {"size": batch_size, "tokens": int(batch["input_ids"].shape[1])},
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "median_seconds": med,
        "all_seconds": times,
        "measured_ratio": med["self_distill"] / med["further_pretrain"],
        "expected_ratio_from_pass_count": PASSES_EXPECTED,
        "expected_ratio_from_timed_passes_and_update": predicted,
    }
    return result


def markdown(result: dict) -> str:
    """The step-time table (the CLI prints it and writes it to bench.md)."""
    lines = [
        f"self_distill vs further_pretrain, {result['model']}, batch {result['batch']['size']}x"
        f"{result['batch']['tokens']} tokens, {result['threads']} threads, "
        f"median of {result['repeats']} interleaved steps",
        "",
        f"{'step / pass':<26}{'seconds':>10}",
    ]
    lines += [f"{k:<26}{v:>10.3f}" for k, v in result["median_seconds"].items()]
    lines += [
        f"measured SD/FPT step ratio: {result['measured_ratio']:.2f}",
        f"expected from pass count, passes only (7/3): {result['expected_ratio_from_pass_count']:.2f}; "
        f"from the timed passes + update: {result['expected_ratio_from_timed_passes_and_update']:.2f}",
    ]
    return "```\n" + "\n".join(lines) + "\n```\n"
