"""TF-IDF + logistic regression vs TF-IDF + LinearSVC at 1,000 training examples (seed 0) on the
five tasks of this folder: which linear baseline tailor reports (the stronger one).

  python docs/defaults/baseline_choice.py runs/corpora     # a few minutes on 2 CPU cores
"""

import sys

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import matthews_corrcoef
from sklearn.svm import LinearSVC

from tailor.zoo.data import DataConfig, load_task

corpora = sys.argv[1]
CORPORA = ["friends-25", "disaster-categories", "grimm-34"]
for n in ["reuters-r8", "tweets2016", "disaster-genre", *(f"{corpora}/{c}" for c in CORPORA)]:
    t = load_task(DataConfig(name=n, train_size=1000, test_size=1000, max_length=128), 0)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    a, b = vec.fit_transform(t.train["text"]), vec.transform(t.test["text"])
    y, yt = np.array(t.train["label"]), np.array(t.test["label"])
    row = [n.split("/")[-1]]
    for name, clf in [("LR C=10", LogisticRegression(C=10, max_iter=2000)), ("LinearSVC C=1", LinearSVC(C=1.0))]:
        p = clf.fit(a, y).predict(b)
        row.append(f"{name}: acc {100 * (p == yt).mean():.1f} MCC {matthews_corrcoef(yt, p):.3f}")
    print(" | ".join(row))
