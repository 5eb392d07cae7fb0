"""Fixtures shared by the loader tests."""

from __future__ import annotations

import pytest

from protocols.datasets._common import FileLoader


@pytest.fixture
def tiny_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept records of a few frames: the layout tests parse tiny files. The 2-s minimum itself (and
    the 1-frame rejection, which stays on) is tested in ``test_bad_recordings.py``."""
    monkeypatch.setattr(FileLoader, "min_seconds", 0.0)
