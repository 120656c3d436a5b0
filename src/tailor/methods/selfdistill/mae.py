"""ViT-MAE artifacts: keep the MAE decoder for the teacher, hand a ViT classifier to ``finetune``.

transformers has no image-classification head for ``vit_mae``. As in the authors' code (a
``ViTForImageClassification`` built from the MAE encoder's weights), the ``classifier`` head is a
ViT with the same encoder weights and a fresh linear head on the [CLS] token.
"""

from __future__ import annotations

from torch import nn

from ...zoo.models import vit_classifier_from_mae

FORMAT = "selfdistill_vitmae"


def load_vitmae(artifact, head: str, num_labels: int | None) -> nn.Module:
    from transformers import ViTMAEForPreTraining, ViTMAEModel

    if head == "classifier":
        if num_labels is None:
            raise ValueError("head='classifier' needs num_labels")
        return vit_classifier_from_mae(artifact.path, num_labels)
    if head == "base":
        return ViTMAEModel.from_pretrained(artifact.path)
    if head == "mlm":
        return ViTMAEForPreTraining.from_pretrained(artifact.path)
    raise ValueError(
        f"{artifact.path}: a ViTMAE artifact has heads base, mlm (the MAE decoder), classifier; got '{head}'"
    )
