import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mnist_vae.atomic import OutputError, all_or_nothing, atomic_open, write_bytes, write_json


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


def _previous_outputs(folder, names):
    """Each output as a previous run left it: its name, in bytes."""
    for name in names:
        (folder / name).write_bytes(f"previous {name}".encode())
    return {name: (folder / name).read_bytes() for name in names}


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_final_rename_that_fails_puts_every_output_back(tmp_path):
    # The 3rd of 4 renames meets a folder where a file should go (a real EISDIR): the 1st
    # output gets its previous file back, the 2nd (new) goes, the 4th was never touched.
    previous = _previous_outputs(tmp_path, ["a.json", "d.json"])
    (tmp_path / "c").mkdir()
    with pytest.raises(OutputError) as raised, all_or_nothing():
        for name in ("a.json", "b.json", "c", "d.json"):
            write_json(tmp_path / name, {"run": 2})
    assert str(raised.value) == f"cannot write {tmp_path / 'c'}: {os.strerror(errno.EISDIR)}"
    assert {name: (tmp_path / name).read_bytes() for name in previous} == previous
    assert _listing(tmp_path) == ["a.json", "c", "d.json"]  # no b.json, no temporary file
    assert _listing(tmp_path / "c") == []


@pytest.mark.parametrize("failing", [1, 2, 3])
def test_whichever_final_rename_fails_every_output_keeps_its_previous_bytes(
    tmp_path, monkeypatch, failing
):
    names = ["first.bin", "second.bin", "third.bin"]
    previous = _previous_outputs(tmp_path, names)
    replace, renamed = os.replace, []

    def replace_failing_once(source, destination):
        if str(source).endswith(".tmp"):  # a new file going into place
            renamed.append(destination)
            if len(renamed) == failing:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(source))
        replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_failing_once)
    with pytest.raises(OutputError) as raised, all_or_nothing():
        for name in names:
            write_bytes(tmp_path / name, b"new")
    assert len(renamed) == failing
    expected = f"cannot write {tmp_path / names[failing - 1]}: {os.strerror(errno.ENOSPC)}"
    assert str(raised.value) == expected
    assert {name: (tmp_path / name).read_bytes() for name in names} == previous
    assert _listing(tmp_path) == names


def _signal_at_the_first_rename(monkeypatch, events, signum):
    """os.replace that notes each new file it puts into place in `events`, and sends this
    process `signum` as it puts the first."""
    replace = os.replace

    def replace_and_signal(source, destination):
        if str(source).endswith(".tmp"):
            if not events:
                os.kill(os.getpid(), signum)
            events.append(f"renamed {Path(destination).name}")
        replace(source, destination)

    monkeypatch.setattr(os, "replace", replace_and_signal)


@pytest.fixture
def another_thread():
    """A thread running beside the test's, as torch's do in a stage: the kernel may hand a
    signal to it, and Python then runs the handler in the main thread all the same."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=60)


# Ctrl-C's signal, and `kill`'s.
INTERRUPTS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])


@pytest.fixture
def on_signal():
    """Sets this process's handler of a signal for the test, and restores the previous after."""
    previous = {}

    def set_handler(signum, handler):
        previous.setdefault(signum, signal.getsignal(signum))
        signal.signal(signum, handler)

    yield set_handler
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@INTERRUPTS
def test_a_signal_during_the_final_renames_acts_after_them_and_changes_nothing(
    tmp_path, monkeypatch, another_thread, on_signal, signum
):
    names = ["a.bin", "b.bin", "c.bin"]
    previous = _previous_outputs(tmp_path, names)
    events = []

    def interrupt(signum, frame):  # as cli.run_stage's handler does
        events.append("handler")
        raise KeyboardInterrupt

    on_signal(signum, interrupt)
    _signal_at_the_first_rename(monkeypatch, events, signum)
    with pytest.raises(KeyboardInterrupt), all_or_nothing():
        for name in names:
            write_bytes(tmp_path / name, b"new")
    assert events == ["renamed a.bin", "renamed b.bin", "renamed c.bin", "handler"]
    assert {name: (tmp_path / name).read_bytes() for name in names} == previous
    assert _listing(tmp_path) == names


@INTERRUPTS
def test_an_ignored_signal_during_the_final_renames_stops_nothing(
    tmp_path, monkeypatch, on_signal, signum
):
    # A stage started in the background ignores SIGINT; an ignored signal is no interruption.
    names = ["a.bin", "b.bin"]
    _previous_outputs(tmp_path, names)
    events = []
    on_signal(signum, signal.SIG_IGN)
    _signal_at_the_first_rename(monkeypatch, events, signum)
    try:
        with all_or_nothing():
            for name in names:
                write_bytes(tmp_path / name, b"new")
    except KeyboardInterrupt:  # not pytest's own: would stop the whole run
        pytest.fail("an ignored signal interrupted the renames")
    assert events == ["renamed a.bin", "renamed b.bin"]
    assert [(tmp_path / name).read_bytes() for name in names] == [b"new", b"new"]
    assert _listing(tmp_path) == names


def test_all_or_nothing_blocks_do_not_nest(tmp_path):
    with all_or_nothing():
        write_json(tmp_path / "out.json", {"x": 1})
        with pytest.raises(RuntimeError, match="blocks do not nest"), all_or_nothing():
            pass
        assert not (tmp_path / "out.json").exists()  # the outer block's write still waits
    assert (tmp_path / "out.json").read_text() == '{\n  "x": 1\n}\n'


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_NOFILE")
def test_a_temporary_file_that_cannot_be_made_is_one_line_and_changes_nothing(tmp_path):
    # The soft limit on open files set to the lowest free descriptor: mkstemp's open fails
    # (EMFILE), as root too, after another output's new file is already waiting.
    _previous_outputs(tmp_path, ["first.bin", "second.bin"])
    script = (
        "import os, resource\n"
        "from mnist_vae.atomic import write_bytes\n"
        "from mnist_vae.cli import run_stage\n"
        "def main():\n"
        "    write_bytes('first.bin', b'new')\n"
        "    lowest_free = os.open(os.devnull, os.O_RDONLY)\n"
        "    os.close(lowest_free)\n"
        "    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))\n"
        "    write_bytes('second.bin', b'new')\n"
        "run_stage('demo', main)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"[demo] error: cannot write second.bin: {os.strerror(errno.EMFILE)}\n"
    assert [(tmp_path / n).read_bytes() for n in ("first.bin", "second.bin")] == [
        b"previous first.bin",
        b"previous second.bin",
    ]
    assert _listing(tmp_path) == ["first.bin", "second.bin"]


def test_a_file_where_the_folder_should_be_is_named(tmp_path):
    (tmp_path / "plots").write_text("not a folder")
    with pytest.raises(OutputError) as raised:
        write_json(tmp_path / "plots" / "loss.json", {})
    assert str(raised.value) == (
        f"cannot write {tmp_path / 'plots' / 'loss.json'}: {tmp_path / 'plots'}: "
        f"{os.strerror(errno.EEXIST)}"
    )


def test_an_error_about_another_file_in_the_block_is_not_called_a_failed_write(tmp_path):
    # Reading an input inside an output's block: the error is the input's, unchanged.
    (tmp_path / "out.csv").write_text("previous")
    missing = tmp_path / "input.csv"
    with pytest.raises(FileNotFoundError) as raised, atomic_open(tmp_path / "out.csv") as handle:
        handle.write("new")
        missing.read_text()
    assert raised.value.filename == str(missing)
    assert (tmp_path / "out.csv").read_text() == "previous"
    assert _listing(tmp_path) == ["out.csv"]
