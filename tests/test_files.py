"""The one way tdwgym writes a file (``tdwgym.util.files``): whole or not at all."""

from __future__ import annotations

import os

import pytest

from tdwgym.util.files import atomic_path, temporary_name, write_atomic


def test_a_write_appears_whole_and_a_failed_one_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "sub" / "config.json"
    assert write_atomic(path, '{"a": 1}') == path and path.read_text() == '{"a": 1}'  # the folder is made
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text('{"a": 2, "half')
        raise RuntimeError("the disk filled up")
    assert path.read_text() == '{"a": 1}'
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]
    write_atomic(path, b"\x00\x01", durable=True)
    assert path.read_bytes() == b"\x00\x01"


def test_the_temporary_name_is_a_dot_file_of_this_process_and_keeps_the_suffix_on_request(tmp_path):
    path = tmp_path / "rollout.mp4"
    assert temporary_name(path) == tmp_path / f".rollout.mp4.{os.getpid()}.tmp"
    assert temporary_name(path, keep_suffix=True) == tmp_path / f".rollout.mp4.{os.getpid()}.tmp.mp4"
    with atomic_path(path, keep_suffix=True) as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"video")
    assert path.read_bytes() == b"video"
