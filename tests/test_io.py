"""Crash-safe files: a temporary file in the destination folder, renamed into place."""

import errno
import os
import subprocess
import sys

import pytest

from depth_lightning.core.files import (
    DiskFullError,
    atomic_path,
    remove_leftovers,
    tmp_name,
    write_json,
    write_text,
    write_with,
)


def test_a_file_appears_complete_or_not_at_all(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}'
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        assert tmp.parent == path.parent and tmp.name.startswith(".metrics.json.tmp-")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == '{\n  "a": 1\n}', "the previous file survives"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    write_with(tmp_path / "x.txt", lambda tmp: tmp.write_text("done"))
    assert (tmp_path / "x.txt").read_text() == "done"


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFullError) as info:
        write_text(tmp_path / "big.txt", "x" * 2_000_000)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'big.txt'}: no space left on the device (2.0 MB "
                              "needed, ") and "MB free)" in message
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (tmp_path / f".cache.tmp-{dead}").mkdir()
    (tmp_path / f".file.tmp-{dead}").write_text("x")
    mine = tmp_name(tmp_path / "file")
    mine.write_text("in use")
    assert remove_leftovers(tmp_path) == 2
    assert [p.name for p in tmp_path.iterdir()] == [mine.name], "a live process keeps its own"
