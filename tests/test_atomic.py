import errno
import os
import subprocess
import sys

import pytest

from mnist_vae.atomic import all_or_nothing, atomic_open, write_json


def test_failure_mid_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"version": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as handle:
        handle.write('{"version": 2, "half')
        raise RuntimeError("killed mid-write")
    assert path.read_text() == '{\n  "version": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_success_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_open(path) as handle:
        handle.write("new")
    assert path.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() would make it, not 0o600


def test_all_or_nothing_changes_no_output_when_the_block_fails_after_writing(tmp_path):
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    write_json(first, {"run": 1})
    write_json(second, {"run": 1})
    with pytest.raises(KeyboardInterrupt), all_or_nothing():
        write_json(first, {"run": 2})  # complete, but only pending
        assert first.read_text() == '{\n  "run": 1\n}\n'
        raise KeyboardInterrupt
    assert first.read_text() == second.read_text() == '{\n  "run": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first.json", "second.json"]


def test_all_or_nothing_writes_every_output_at_its_end(tmp_path):
    with all_or_nothing():
        write_json(tmp_path / "a.json", {"x": 1})
        write_json(tmp_path / "b" / "c.json", {"x": 2})
        assert not (tmp_path / "a.json").exists()
    assert (tmp_path / "a.json").read_text() == '{\n  "x": 1\n}\n'
    assert (tmp_path / "b" / "c.json").read_text() == '{\n  "x": 2\n}\n'
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b", "c.json"]


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs RLIMIT_FSIZE")
def test_an_os_error_while_writing_is_one_line_naming_the_file_and_keeps_the_old_one(tmp_path):
    (tmp_path / "out.bin").write_bytes(b"previous")
    script = (
        "import resource\n"
        "from mnist_vae.atomic import write_bytes\n"
        "from mnist_vae.cli import run_stage\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))\n"
        "run_stage('demo', lambda: write_bytes('out.bin', bytes(10_000)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr == f"[demo] error: cannot write out.bin: {os.strerror(errno.EFBIG)}\n"
    assert (tmp_path / "out.bin").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]
