import numpy as np
import pytest
import torch
from conftest import write_idx

from mnist_vae.idx import (
    MNIST_FILES,
    DataError,
    IdxFile,
    encode_idx,
    md5_of,
    raw_dir,
    read_idx,
    verify_file,
)
from mnist_vae.mnist import load_split


def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / "images", images)
    write_idx(tmp_path / "labels", labels)
    assert np.array_equal(read_idx(tmp_path / "images"), images)
    assert np.array_equal(read_idx(tmp_path / "labels"), labels)


def test_idx_header_is_the_canonical_one():
    header = encode_idx(np.zeros((2, 28, 28), dtype=np.uint8))[:16]
    assert header == bytes.fromhex("00000803000000020000001c0000001c")
    assert encode_idx(np.zeros(3, dtype=np.uint8))[:8] == bytes.fromhex("0000080100000003")


def test_torchvision_reads_what_we_write(synthetic_root):
    from torchvision.datasets import MNIST

    ours = load_split(synthetic_root, "test")
    theirs = MNIST(str(synthetic_root), train=False, download=False)
    assert torch.equal(theirs.data, ours.images)
    assert torch.equal(theirs.targets, ours.labels)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "images"
    write_idx(path, np.zeros((4, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="header promises shape"):
        read_idx(path)


def test_wrong_magic_is_refused(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(b"\x00\x00\x0d\x03" + encode_idx(np.zeros((1, 28, 28), np.uint8))[4:])
    with pytest.raises(DataError, match="magic number"):
        read_idx(path)


def test_verify_file_names_size_and_md5_problems(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(b"abcd")
    good = IdxFile("x", 4, md5_of(path))
    assert verify_file(tmp_path, good) is None
    assert "bytes, expected 5" in verify_file(tmp_path, IdxFile("x", 5, good.md5))
    flipped = IdxFile("x", 4, "0" * 32)
    assert "has md5" in verify_file(tmp_path, flipped)
    assert "missing" in verify_file(tmp_path, IdxFile("y", 4, good.md5))


def test_load_split_gives_uint8_images_and_int64_labels(synthetic_root):
    split = load_split(synthetic_root, "train")
    assert split.images.dtype == torch.uint8 and split.images.shape == (512, 28, 28)
    assert split.labels.dtype == torch.int64 and len(split) == 512
    pixels = split.flat_float()
    assert pixels.shape == (512, 784) and pixels.min() == 0 and pixels.max() == 1


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((3, 28, 27), np.uint8), np.zeros(3, np.uint8), "shape"),
        (np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8), "3 images but"),
        (np.zeros((3, 28, 28), np.uint8), np.array([0, 1, 10], np.uint8), "classes 0-9"),
        (np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8), "empty"),
    ],
)
def test_load_split_refuses_data_not_shaped_like_mnist(tmp_path, images, labels, message):
    write_idx(raw_dir(tmp_path) / MNIST_FILES["test_images"].name, images)
    write_idx(raw_dir(tmp_path) / MNIST_FILES["test_labels"].name, labels)
    with pytest.raises(DataError, match=message):
        load_split(tmp_path, "test")


def test_load_split_says_how_to_get_missing_data(tmp_path):
    with pytest.raises(DataError, match="dvc repro download"):
        load_split(tmp_path, "train")
