"""Checkpoint writing: a full disk leaves no temp file and says so; dead writers' leftovers are removed."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest
import torch

import benchmark.trainer as trainer
from benchmark.trainer import DiskFullError, Trainer, TrainerConfig, remove_stale_temp_files


def _full_disk_after_some_bytes(obj, f, *args, **kwargs):
    """torch.save that writes 4 kB, then fails as a full disk does (to a path or an open file)."""
    fh = open(f, "wb") if not hasattr(f, "write") else f
    try:
        fh.write(b"\0" * 4096)
        fh.flush()
        raise OSError(errno.ENOSPC, "No space left on device")
    finally:
        if fh is not f:
            fh.close()


def test_disk_full_removes_the_temp_file_and_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "save", _full_disk_after_some_bytes)
    target = tmp_path / "last.pt"
    with pytest.raises(DiskFullError, match=r"disk full.*" + str(target).replace("\\", "\\\\")) as info:
        trainer._atomic_save({"w": torch.zeros(3)}, target)
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []  # neither the target nor a partial temp file


def test_any_failure_while_writing_removes_the_temp_file(tmp_path, monkeypatch):
    def interrupted(obj, f, *a, **k):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer._atomic_save({}, tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_real_full_device_is_reported_as_disk_full(tmp_path, monkeypatch):
    """Without the monkeypatch: /dev/full fails every write with ENOSPC, as a full disk does (torch's
    own path writer turns that into an unreadable ``inline_container.cc`` error)."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    real_open = open

    def open_dev_full(path, mode="r", *a, **k):
        return real_open("/dev/full", mode, *a, **k) if ".tmp-" in str(path) else real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", open_dev_full)
    with pytest.raises(DiskFullError, match="disk full"):
        trainer._atomic_save({"w": torch.zeros(10_000)}, tmp_path / "last.pt")


def test_stale_temp_files_of_dead_processes_are_removed_when_a_run_starts(tmp_path):
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(dead.stdout)
    host = socket.gethostname()
    old_style = tmp_path / f".last.pt.tmp-{dead_pid}"  # the format before host names were added
    new_style = tmp_path / f".phase_main_best.pt.tmp-{host}-{dead_pid}"
    alive = tmp_path / f".last.pt.tmp-{host}-{os.getppid()}"
    other_host = tmp_path / f".last.pt.tmp-some-other-host-{dead_pid}"
    keep = tmp_path / "last.pt"
    for p in (old_style, new_style, alive, other_host, keep):
        p.write_bytes(b"x")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(removed) == sorted([old_style, new_style])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (alive, other_host, keep))


def test_trainer_fit_cleans_its_folder_before_training(tmp_path):
    """Trainer.fit removes a dead writer's leftover before it starts (stopped at the method's first call)."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    leftover = tmp_path / f".last.pt.tmp-{int(dead.stdout)}"
    leftover.write_bytes(b"partial")

    class Stop(Exception):
        pass

    class Method:
        def prepare(self, ds):
            raise Stop

    with pytest.raises(Stop):
        Trainer(TrainerConfig(device="cpu", progress=False), tmp_path).fit(Method(), [1], None)  # type: ignore[arg-type]
    assert not leftover.exists()
