"""The test session's weight store: one written copy, hard links handed out, never a broken file handed out."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import weight_store


def _writer(calls: list[Path], payload: bytes):
    def write(path: Path) -> None:
        calls.append(path)
        path.write_bytes(payload)
    return write


def test_one_write_then_links_and_a_changed_stored_file_is_written_again(tmp_path, monkeypatch):
    monkeypatch.setenv(weight_store.STORE_ENV, str(tmp_path / "store"))
    calls: list[Path] = []
    write = _writer(calls, b"weights" * 100)
    first = weight_store.materialize(tmp_path / "a" / "w.safetensors", "kind/w.safetensors", write)
    second = weight_store.materialize(tmp_path / "b" / "w.safetensors", "kind/w.safetensors", write)
    assert calls == [tmp_path / "store" / "kind" / "w.safetensors"]  # written once, into the store
    assert first.read_bytes() == second.read_bytes() == b"weights" * 100
    assert first.stat().st_ino == second.stat().st_ino and first.stat().st_nlink == 3  # store + two links
    # Handing out again over an existing file replaces it (a new link), never writes into it.
    first.unlink()
    first.write_bytes(b"a test's own file")
    weight_store.materialize(first, "kind/w.safetensors", write)
    assert first.read_bytes() == b"weights" * 100 and len(calls) == 1
    # A test that truncates a linked copy in place truncates the stored file: it is written again, not handed out.
    with open(second, "r+b") as f:
        f.truncate(10)
    third = weight_store.materialize(tmp_path / "c" / "w.safetensors", "kind/w.safetensors", write)
    assert len(calls) == 2 and third.read_bytes() == b"weights" * 100


def test_without_the_store_files_are_written_where_asked(tmp_path, monkeypatch):
    monkeypatch.delenv(weight_store.STORE_ENV, raising=False)
    assert weight_store.store_dir() is None
    calls: list[Path] = []
    target = tmp_path / "w.safetensors"
    assert weight_store.materialize(target, "kind/w.safetensors", _writer(calls, b"x")) == target
    assert calls == [target] and target.read_bytes() == b"x"


def test_the_session_store_is_on_during_the_tests():
    store = weight_store.store_dir()
    assert store is not None and store.is_dir()


@pytest.mark.parametrize("form", ["file", "folder"])
def test_official_weights_go_through_the_store(tmp_path, form):
    import torch

    from tests.support.official_weights import write_repo

    a = write_repo(tmp_path / "a", "hm4_control_proj", form=form, dtype=torch.float16)
    b = write_repo(tmp_path / "b", "hm4_control_proj", form=form, dtype=torch.float16)
    assert a.stat().st_ino == b.stat().st_ino and a.stat().st_size > 1_000_000
