"""One progress bar per stage, with loss, learning rate and throughput in its postfix.

transformers' ProgressCallback draws the bar but also writes every log dict through it, so raw
dicts interleave with tqdm's redraws. This subclass keeps the bar and puts the latest loss, lr and
samples/s in the postfix instead; the full log still goes to metrics.jsonl and TensorBoard.
"""

from __future__ import annotations

import time

from transformers.trainer_callback import ProgressCallback


class StageProgress(ProgressCallback):
    def __init__(self, description: str):
        super().__init__()
        self.description = description

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if self.training_bar is not None:
            self.training_bar.set_description(self.description)
            self.training_bar.update(state.global_step)  # a resumed stage starts where it stopped
        self.current_step = state.global_step
        self._since = (time.perf_counter(), state.global_step)
        self._samples_per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is None or not logs or "loss" not in logs:
            return
        now, steps = time.perf_counter(), state.global_step
        rate = (steps - self._since[1]) * self._samples_per_step / max(now - self._since[0], 1e-9)
        self._since = (now, steps)
        self.training_bar.set_postfix(
            {"loss": f"{logs['loss']:.4g}", "lr": f"{logs.get('learning_rate', 0.0):.3g}", "samples/s": f"{rate:.1f}"}
        )


def quiet_libraries() -> None:
    """Silence transformers' info and warning logs on the console (tailor logs what was newly initialised)."""
    import transformers

    transformers.logging.set_verbosity_error()
