"""Baselines beside every score: the majority class, and a linear classifier trained with
scikit-learn on the same training examples, scored on the same test split with the same metrics
(`engine.metrics.classification_metrics`).

Text: TF-IDF of word uni- and bigrams + a linear SVM (LinearSVC, C=1, one-vs-rest). Chosen over
logistic regression because it is the stronger bar and the faster one: at 1,000 training examples
it scored higher on all five tasks of docs/defaults/README.md (e.g. reuters-r8 96.0 vs 93.3 %,
disaster categories 43.2 vs 40.2 %) in a few seconds instead of up to 40. An SVM has margins, not
probabilities, so its `loss` is left out. Images: logistic regression on the raw pixels scaled to
[0, 1]. The majority baseline predicts the training set's most frequent class, with the training
class frequencies as probabilities.

Results are cached per data split in `$TAILOR_CACHE/baselines/<sha1 of the split's inputs and
labels>.json`, so every stage and seed that scores on the same data pays for them once.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np

from .engine.metrics import classification_metrics
from .files import atomic_write_text
from .zoo.cache import cache_root

log = logging.getLogger(__name__)

VERSION = 2  # bump when a baseline's definition changes, so cached scores are recomputed


def split_digest(task) -> str:
    """Hash of the training and test inputs and labels: the cache key of a data split."""
    h = hashlib.sha1(f"baselines-v{VERSION}-{task.modality}".encode())
    column = "text" if task.modality == "text" else "image"
    for split in (task.train, task.test):
        if column == "text":
            h.update("\x1f".join(split["text"]).encode())
        else:
            h.update(np.ascontiguousarray(_pixels(split)).tobytes())
        h.update(np.asarray(split["label"], dtype=np.int64).tobytes())
    return h.hexdigest()


def _pixels(split) -> np.ndarray:
    x = np.stack([np.asarray(im, dtype=np.uint8) for im in split["image"]])
    return x.reshape(len(x), -1).astype(np.float32) / 255.0


def _majority_logits(y_train: np.ndarray, n_test: int, num_labels: int) -> np.ndarray:
    prior = (np.bincount(y_train, minlength=num_labels) + 1e-3) / (len(y_train) + 1e-3 * num_labels)
    return np.tile(np.log(prior), (n_test, 1))


def _linear_scores(task) -> np.ndarray:
    """Per-class scores of TF-IDF + LinearSVC (text) or pixel logistic regression (images)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if task.modality == "text":
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        x_train, x_test = vec.fit_transform(task.train["text"]), vec.transform(task.test["text"])
        clf = LinearSVC(C=1.0)
    else:
        x_train, x_test = _pixels(task.train), _pixels(task.test)
        clf = LogisticRegression(C=1.0, max_iter=500)
    clf.fit(x_train, np.asarray(task.train["label"]))
    scores = clf.decision_function(x_test)
    if scores.ndim == 1:  # two classes: one margin, positive for classes_[1]
        scores = np.stack([-scores, scores], 1)
    out = np.full((x_test.shape[0], task.num_labels), -1e4, dtype=np.float64)  # classes absent from train
    out[:, clf.classes_] = scores
    return out


def _without_loss(metrics: dict) -> dict:
    """Margins (or logistic scores) are not the models' probabilities: their cross-entropy would mislead."""
    return {k: v for k, v in metrics.items() if k != "loss"}


def baselines_for(task) -> dict:
    """{"majority": metrics, "linear": metrics, "linear_features": "tfidf" | "pixels"} on the test split."""
    path = cache_root() / "baselines" / f"{split_digest(task)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    y_train, y_test = np.asarray(task.train["label"]), np.asarray(task.test["label"])
    log.info(
        "baselines: majority class and %s on %d training examples",
        "TF-IDF + LinearSVC" if task.modality == "text" else "pixels + logistic regression",
        len(y_train),
    )
    out = {
        "majority": classification_metrics(_majority_logits(y_train, len(y_test), task.num_labels), y_test),
        "linear": _without_loss(classification_metrics(_linear_scores(task), y_test)),
        "linear_features": "tfidf" if task.modality == "text" else "pixels",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(out, indent=2))
    return out
