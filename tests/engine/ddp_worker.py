"""Run under torchrun: trains tiny-vit for a few steps and writes a hash of the final weights per rank."""

import hashlib
import os
import sys
from pathlib import Path

import torch

from tailor.engine.inputs import prepare
from tailor.engine.losses import CrossEntropy
from tailor.engine.settings import TrainSettings
from tailor.engine.trainer import train
from tailor.zoo import models
from tailor.zoo.data import DataConfig, load_task

out = Path(sys.argv[1])
cfg = DataConfig(name="digits", image_size=32, train_size=64, test_size=32)
data = prepare(load_task(cfg), "tiny-vit", cfg)
torch.manual_seed(0)  # same initial head on every rank (DDP also broadcasts it)
model = models.load("tiny-vit", "classifier", num_labels=10)
train(
    model,
    data.train,
    settings=TrainSettings(steps=3, lr=1e-2, batch_size=8),
    out_dir=out / "train",
    objective=CrossEntropy(),
    collator=data.collator,
)
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
(out / f"rank{os.environ['RANK']}.txt").write_text(f"{world} {digest}")
