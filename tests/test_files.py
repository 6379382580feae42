"""kapps.utils.files: atomic writes leave the old file or the new one, never a half-written one."""

from __future__ import annotations

import os

import pytest

from kapps.utils.files import atomic_open, atomic_path, write_json_atomic, write_text_atomic


def test_write_text_creates_folders_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a" / "b" / "out.txt"
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(target.parent) == ["out.txt"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_error_inside_block_keeps_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target, "w") as f:
            f.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == '{\n "v": 1\n}\n'
    assert os.listdir(tmp_path) == ["out.json"]


def test_failed_verification_keeps_old_file(tmp_path):
    target = tmp_path / "weights.h5"
    target.write_bytes(b"old")

    def verify(tmp):
        raise ValueError(f"bad file {os.path.basename(tmp)}")

    with pytest.raises(ValueError, match="bad file"):
        with atomic_path(target, verify=verify, suffix=".h5") as tmp:
            assert tmp.endswith(".h5")
            with open(tmp, "wb") as f:
                f.write(b"new")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["weights.h5"]


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"`mode` must be 'w' or 'wb'. Received: mode='a'"):
        with atomic_open(tmp_path / "x", "a"):
            pass
