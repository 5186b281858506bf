import pytest

from mnist_vae.atomic import atomic_open, write_json


def test_failure_mid_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"version": 1})
    with pytest.raises(RuntimeError), atomic_open(path) as handle:
        handle.write('{"version": 2, "half')
        raise RuntimeError("killed mid-write")
    assert path.read_text() == '{\n  "version": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_success_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_open(path) as handle:
        handle.write("new")
    assert path.read_text() == "new"
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)
