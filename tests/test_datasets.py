"""Tests for ffterm_core.data.datasets: file formats, search order, errors, normalisation, synthetic data.

Nothing here downloads: every test passes ``download=False`` or replaces the download step.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from ffterm_core.data import datasets as ds
from ffterm_core.data.datasets import (
    DATASETS,
    DatasetCorrupt,
    DatasetError,
    DatasetInfo,
    DatasetNotFound,
    default_data_dir,
    load_raw,
    normalize_images,
    searched_paths,
)

DEBIAN_FMNIST = Path("/usr/share/datasets/fashion-mnist")
REAL_DOWNLOAD = ds._download
HAVE_DEBIAN_FMNIST = all(
    (DEBIAN_FMNIST / f"{s}-{k}-ubyte.gz").is_file() for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")
)


# ---------------------------------------------------------------------------------------------
# helpers: write tiny files in every format
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No system folders, no FFTERM_DATA leaking in, and never a real download."""
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {})
    monkeypatch.delenv("FFTERM_DATA", raising=False)

    def no_download(key: str, split: str, root: Path) -> None:
        raise RuntimeError("downloads are disabled in tests")

    monkeypatch.setattr(ds, "_download", no_download)


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def make_idx_set(folder: Path, seed: int, gz: bool = False, n_train: int = 5, n_test: int = 3):
    """Write the four IDX files of a tiny MNIST-like set; return the arrays written."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


def assert_loaded(result, images: np.ndarray, labels: np.ndarray, shape: tuple[int, ...]):
    x, y = result
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert x.is_contiguous() and y.is_contiguous()
    assert tuple(x.shape) == (len(labels), *shape)
    assert tuple(y.shape) == (len(labels),)
    assert np.array_equal(x.numpy(), images.reshape(x.shape))
    assert np.array_equal(y.numpy(), labels.astype(np.int64))


def one_line(e: BaseException) -> str:
    msg = str(e)
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


# ---------------------------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------------------------


def test_dataset_table_matches_spec():
    assert set(DATASETS) == {"mnist", "fashionmnist", "svhn", "cifar10", "synthetic"}
    m, f, s, c = (DATASETS[k] for k in ("mnist", "fashionmnist", "svhn", "cifar10"))
    assert (m.shape, m.hidden, m.mean, m.std) == ((1, 28, 28), 1000, (0.1307,), (0.3081,))
    # FashionMNIST deliberately uses MNIST's constants (published code).
    assert (f.shape, f.hidden, f.mean, f.std) == ((1, 28, 28), 1000, (0.1307,), (0.3081,))
    assert (s.shape, s.hidden) == ((3, 32, 32), 3072)
    assert s.mean == (0.4377, 0.4438, 0.4728) and s.std == (0.1980, 0.2010, 0.1970)
    assert (c.shape, c.hidden, c.mean, c.std) == ((3, 32, 32), 3072, (0.5,) * 3, (0.5,) * 3)
    syn = DATASETS["synthetic"]
    assert syn.shape[0] == 1 and syn.shape[2] >= 10 and syn.hidden == 64
    for info in DATASETS.values():
        assert info.num_classes == 10
        assert len(info.mean) == len(info.std) == info.shape[0]
        assert info.input_dim == int(np.prod(info.shape))
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.hidden = 3  # frozen


def test_name_aliases_and_unknown_name():
    assert ds.canonical_name("FashionMNIST") == "fashionmnist"
    assert ds.canonical_name("fashion-mnist") == "fashionmnist"
    assert ds.canonical_name("CIFAR-10") == "cifar10"
    with pytest.raises(ValueError) as ei:
        load_raw("imagenet", "train", download=False)
    msg = str(ei.value)
    assert "imagenet" in msg
    for name in DATASETS:
        assert name in msg
    with pytest.raises(ValueError, match="split"):
        load_raw("synthetic", "validation")


# ---------------------------------------------------------------------------------------------
# IDX (MNIST / FashionMNIST)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashionmnist", "FashionMNIST")])
def test_idx_torchvision_layout(tmp_path: Path, name: str, folder: str, gz: bool):
    data = make_idx_set(tmp_path / folder / "raw", seed=1, gz=gz)
    for split in ("train", "test"):
        assert_loaded(load_raw(name, split, tmp_path, download=False), *data[split], (1, 28, 28))


@pytest.mark.parametrize(
    "name,sub",
    [("mnist", "mnist"), ("fashionmnist", "fashion-mnist"), ("mnist", ""), ("fashionmnist", "")],
)
def test_idx_plain_folder(tmp_path: Path, name: str, sub: str):
    data = make_idx_set(tmp_path / sub if sub else tmp_path, seed=2, gz=True)
    assert_loaded(load_raw(name, "test", str(tmp_path), download=False), *data["test"], (1, 28, 28))


def test_idx_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    system = tmp_path / "system"
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashionmnist": (system,)})
    root = tmp_path / "data"
    sys_data = make_idx_set(system, seed=3, gz=True)
    root.mkdir()
    # Only the system folder: it is used.
    assert_loaded(load_raw("fashionmnist", "train", root, download=False), *sys_data["train"], (1, 28, 28))
    # DIR itself beats the system folder.
    top = make_idx_set(root, seed=4)
    assert_loaded(load_raw("fashionmnist", "train", root, download=False), *top["train"], (1, 28, 28))
    # A plain sub-folder beats DIR itself.
    sub = make_idx_set(root / "fashion-mnist", seed=5)
    assert_loaded(load_raw("fashionmnist", "train", root, download=False), *sub["train"], (1, 28, 28))
    # torchvision's layout beats everything.
    tv = make_idx_set(root / "FashionMNIST" / "raw", seed=6)
    assert_loaded(load_raw("fashionmnist", "train", root, download=False), *tv["train"], (1, 28, 28))
    paths = searched_paths("fashionmnist", root)
    assert paths[0] == root / "FashionMNIST" / "raw"
    assert paths.index(root / "fashion-mnist") < paths.index(root) < paths.index(system)
    # The system folder is only searched for FashionMNIST.
    assert system not in searched_paths("mnist", root)


def test_idx_plain_preferred_over_gz(tmp_path: Path):
    raw = tmp_path / "MNIST" / "raw"
    gz_data = make_idx_set(raw, seed=7, gz=True)
    plain_data = make_idx_set(raw, seed=8, gz=False)
    assert not np.array_equal(gz_data["train"][0], plain_data["train"][0])
    assert_loaded(load_raw("mnist", "train", tmp_path, download=False), *plain_data["train"], (1, 28, 28))


def test_split_needs_both_files(tmp_path: Path):
    # A folder holding only the train files is not a hit for the test split.
    data = make_idx_set(tmp_path / "MNIST" / "raw", seed=9)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    assert_loaded(load_raw("mnist", "train", tmp_path, download=False), *data["train"], (1, 28, 28))
    with pytest.raises(DatasetNotFound):
        load_raw("mnist", "test", tmp_path, download=False)


# ---------------------------------------------------------------------------------------------
# Corrupt files
# ---------------------------------------------------------------------------------------------


def _corrupt_case(tmp_path: Path, kind: str) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw, seed=10)
    img = raw / "train-images-idx3-ubyte"
    lbl = raw / "train-labels-idx1-ubyte"
    data = img.read_bytes()
    if kind == "bad_magic":
        img.write_bytes(b"\x00\x00\x08\x04" + data[4:])
        return img
    if kind == "not_idx":
        img.write_bytes(b"<html>404 not found</html>")
        return img
    if kind == "truncated":
        img.write_bytes(data[:-100])
        return img
    if kind == "trailing":
        img.write_bytes(data + b"\x00")
        return img
    if kind == "empty":
        img.write_bytes(b"")
        return img
    if kind == "truncated_gz":
        img.unlink()
        gz = img.with_name(img.name + ".gz")
        gz.write_bytes(gzip.compress(data)[:-30])
        return gz
    if kind == "count_mismatch":
        write_idx(lbl, np.zeros(4, np.uint8))
        return lbl
    if kind == "wrong_size":
        write_idx(img, np.zeros((5, 20, 20), np.uint8))
        return img
    if kind == "bad_label":
        write_idx(lbl, np.array([0, 1, 2, 3, 10], np.uint8))
        return lbl
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "bad_magic",
        "not_idx",
        "truncated",
        "trailing",
        "empty",
        "truncated_gz",
        "count_mismatch",
        "wrong_size",
        "bad_label",
    ],
)
def test_corrupt_idx_is_a_clear_error(tmp_path: Path, kind: str):
    bad = _corrupt_case(tmp_path, kind)
    with pytest.raises(DatasetCorrupt) as ei:
        load_raw("mnist", "train", tmp_path, download=False)
    msg = one_line(ei.value)
    assert str(bad) in msg
    assert ei.value.path == bad
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, DatasetError)


def test_read_idx_direct(tmp_path: Path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    p = write_idx(tmp_path / "x-idx3-ubyte", arr)
    assert np.array_equal(ds.read_idx(p, 3), arr)
    with pytest.raises(DatasetCorrupt, match="magic"):
        ds.read_idx(p, 1)  # wrong number of dimensions


# ---------------------------------------------------------------------------------------------
# SVHN
# ---------------------------------------------------------------------------------------------


def write_svhn(folder: Path, split: str, n: int, seed: int):
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)  # H x W x C x N
    y = np.arange(n, dtype=np.uint8) % 10 + 1  # 1..10, 10 means digit 0
    y = y.reshape(n, 1)
    folder.mkdir(parents=True, exist_ok=True)
    scipy_io.savemat(str(folder / f"{split}_32x32.mat"), {"X": x, "y": y})
    return x, y


@pytest.mark.parametrize("sub", ["", "SVHN"])
def test_svhn_mat(tmp_path: Path, sub: str):
    x, y = write_svhn(tmp_path / sub if sub else tmp_path, "train", n=12, seed=11)
    write_svhn(tmp_path / sub if sub else tmp_path, "test", n=4, seed=12)
    images, labels = load_raw("svhn", "train", tmp_path, download=False)
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert tuple(images.shape) == (12, 3, 32, 32) and images.is_contiguous()
    # pixel (h, w, c) of sample n lands at images[n, c, h, w]
    assert images[5, 2, 7, 19].item() == x[7, 19, 2, 5]
    assert np.array_equal(images.numpy(), np.transpose(x, (3, 2, 0, 1)))
    expected = y.reshape(-1).astype(np.int64)
    expected[expected == 10] = 0
    assert np.array_equal(labels.numpy(), expected)
    assert labels.min().item() == 0 and labels.max().item() == 9
    assert (labels == 0).sum().item() == 1  # the one sample stored as label 10
    assert tuple(load_raw("svhn", "test", tmp_path, download=False)[0].shape) == (4, 3, 32, 32)


def test_svhn_corrupt(tmp_path: Path):
    pytest.importorskip("scipy.io")
    bad = tmp_path / "train_32x32.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file, but then garbage" * 3)
    with pytest.raises(DatasetCorrupt) as ei:
        load_raw("svhn", "train", tmp_path, download=False)
    assert str(bad) in one_line(ei.value)


# ---------------------------------------------------------------------------------------------
# CIFAR10
# ---------------------------------------------------------------------------------------------


def write_cifar(folder: Path, seed: int, n_per_batch: int = 3):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {"train": ([], []), "test": ([], [])}
    names = [("train", f"data_batch_{i}") for i in range(1, 6)] + [("test", "test_batch")]
    for split, fname in names:
        data = rng.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n_per_batch)]
        with open(folder / fname, "wb") as f:
            pickle.dump({b"batch_label": fname.encode(), b"data": data, b"labels": labels}, f)
        out[split][0].append(data)
        out[split][1].extend(labels)
    return {k: (np.concatenate(v[0]).reshape(-1, 3, 32, 32), np.array(v[1])) for k, v in out.items()}


def test_cifar_pickles(tmp_path: Path):
    data = write_cifar(tmp_path / "cifar-10-batches-py", seed=13)
    x, y = load_raw("cifar10", "train", tmp_path, download=False)
    assert tuple(x.shape) == (15, 3, 32, 32)
    assert_loaded((x, y), *data["train"], (3, 32, 32))
    assert_loaded(load_raw("cifar10", "test", tmp_path, download=False), *data["test"], (3, 32, 32))
    # channel-major: the first 1024 bytes of a row are the red plane
    raw0 = data["train"][0].reshape(-1, 3072)[0]
    assert np.array_equal(x[0, 0].flatten().numpy(), raw0[:1024])
    assert np.array_equal(x[0, 2].flatten().numpy(), raw0[2048:])


def test_cifar_str_keys(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, seed=14)
    data = np.full((2, 3072), 7, np.uint8)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": data, "labels": [3, 4]}, f)
    x, y = load_raw("cifar10", "test", tmp_path, download=False)
    assert (x == 7).all() and y.tolist() == [3, 4]


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/ffterm-pwned",))


def test_cifar_refuses_arbitrary_pickles(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, seed=15)
    marker = tmp_path / "pwned"
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": _Evil(), b"labels": [0]}, f)
    with pytest.raises(DatasetCorrupt) as ei:
        load_raw("cifar10", "test", tmp_path, download=False)
    assert str(folder / "test_batch") in one_line(ei.value)
    assert not marker.exists()


def test_cifar_truncated(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, seed=16)
    b3 = folder / "data_batch_3"
    b3.write_bytes(b3.read_bytes()[:100])
    with pytest.raises(DatasetCorrupt, match="data_batch_3"):
        load_raw("cifar10", "train", tmp_path, download=False)


def test_cifar_missing_batch_is_not_found(tmp_path: Path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder, seed=17)
    (folder / "data_batch_5").unlink()
    with pytest.raises(DatasetNotFound):
        load_raw("cifar10", "train", tmp_path, download=False)
    load_raw("cifar10", "test", tmp_path, download=False)  # test split is still complete


# ---------------------------------------------------------------------------------------------
# Missing data and downloads
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashionmnist", "svhn", "cifar10"])
@pytest.mark.parametrize("download", [False, True])
def test_missing_dataset_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, download: bool):
    system = tmp_path / "nowhere"
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashionmnist": (system,)})
    root = tmp_path / "data"
    with pytest.raises(DatasetNotFound) as ei:
        load_raw(name, "train", root, download=download)
    msg = one_line(ei.value)
    paths = searched_paths(name, root)
    assert paths and list(ei.value.paths) == paths
    for p in paths:
        assert str(p) in msg
    assert ds._DISPLAY[name] in msg
    assert "FFTERM_DATA" in msg and "--data-dir" in msg and "internet" in msg
    if name == "fashionmnist":
        assert str(system) in msg and "dataset-fashion-mnist" in msg
    assert ("download failed" in msg) == download
    assert ei.value.dataset == name and ei.value.split == "train"


def test_download_is_used_and_its_files_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = []

    def fake_download(key: str, split: str, root: Path) -> None:
        calls.append((key, split, root))
        make_idx_set(root / "FashionMNIST" / "raw", seed=18)

    monkeypatch.setattr(ds, "_download", fake_download)
    x, _y = load_raw("fashionmnist", "train", tmp_path, download=True)
    assert calls == [("fashionmnist", "train", tmp_path)]
    assert tuple(x.shape) == (5, 1, 28, 28)
    # Found on disk now: no second download.
    load_raw("fashionmnist", "test", tmp_path, download=True)
    assert len(calls) == 1
    # download=False never calls it.
    with pytest.raises(DatasetNotFound):
        load_raw("mnist", "train", tmp_path / "empty", download=False)
    assert len(calls) == 1


def test_real_download_step_is_quiet_and_restores_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    """Run the real _download with torchvision's class replaced by a failing fake."""
    import socket

    tvd = pytest.importorskip("torchvision.datasets")
    monkeypatch.setattr(ds, "_download", REAL_DOWNLOAD)  # undo the autouse no-download patch
    seen = {}

    class FailingFashionMNIST:
        def __init__(self, root, train=True, download=False):
            seen["timeout"] = socket.getdefaulttimeout()
            seen["args"] = (root, train, download)
            print("Downloading http://example.invalid/train-images-idx3-ubyte.gz")
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(tvd, "FashionMNIST", FailingFashionMNIST)
    before = socket.getdefaulttimeout()
    root = tmp_path / "dl"
    with pytest.raises(DatasetNotFound, match="download failed: RuntimeError: Error downloading"):
        load_raw("fashionmnist", "test", root, download=True)
    assert seen["timeout"] == ds.DOWNLOAD_TIMEOUT_S
    assert seen["args"] == (str(root), False, True)
    assert socket.getdefaulttimeout() == before
    out = capsys.readouterr()
    assert "Downloading" not in out.out and "Downloading" not in out.err


# ---------------------------------------------------------------------------------------------
# default_data_dir
# ---------------------------------------------------------------------------------------------


def test_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("FFTERM_DATA", raising=False)
    d = default_data_dir()
    assert d.name == "data" and "ffterm" in d.parts
    monkeypatch.setenv("FFTERM_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    # load_raw with data_dir=None searches FFTERM_DATA
    data = make_idx_set(tmp_path / "MNIST" / "raw", seed=19)
    assert_loaded(load_raw("mnist", "test", download=False), *data["test"], (1, 28, 28))
    assert searched_paths("mnist")[0] == tmp_path / "MNIST" / "raw"
    monkeypatch.setenv("FFTERM_DATA", "")
    assert default_data_dir() == d


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


def test_normalize_by_hand():
    info = DatasetInfo("toy", (2, 1, 2), 8, (0.5, 0.25), (0.5, 0.25))
    images = torch.tensor([[[[0, 255]], [[51, 102]]]], dtype=torch.uint8)  # (1, 2, 1, 2)
    out = normalize_images(images, info)
    expected = torch.tensor([[(0 - 0.5) / 0.5, (1 - 0.5) / 0.5, (0.2 - 0.25) / 0.25, (0.4 - 0.25) / 0.25]])
    assert out.dtype == torch.float32 and tuple(out.shape) == (1, 4)
    assert torch.allclose(out, expected, atol=1e-6)
    assert images.dtype == torch.uint8 and images[0, 0, 0, 1].item() == 255  # input untouched


def test_normalize_mnist_constants_and_checks():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1).expand(2, 1, 28, 28)
    out = normalize_images(images, "fashionmnist")
    assert tuple(out.shape) == (2, 784)
    assert out[0, 0].item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert out[1, 0].item() == pytest.approx(2.8215, abs=1e-4)
    with pytest.raises(TypeError):
        normalize_images(images.float(), DATASETS["mnist"])
    with pytest.raises(ValueError):
        normalize_images(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), DATASETS["mnist"])


# ---------------------------------------------------------------------------------------------
# synthetic
# ---------------------------------------------------------------------------------------------


def test_synthetic_deterministic_balanced():
    info = DATASETS["synthetic"]
    x1, y1 = load_raw("synthetic", "train")
    x2, y2 = load_raw("synthetic", "train", data_dir="/nonexistent", download=True)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    xt, yt = load_raw("synthetic", "test")
    assert x1.dtype == torch.uint8 and y1.dtype == torch.int64 and x1.is_contiguous()
    assert tuple(x1.shape) == (2000, *info.shape) and tuple(xt.shape) == (500, *info.shape)
    assert torch.bincount(y1, minlength=10).tolist() == [200] * 10
    assert torch.bincount(yt, minlength=10).tolist() == [50] * 10
    assert not torch.equal(x1[:500], xt)
    # fresh tensors each call (callers may modify them)
    x1[0] = 0
    assert not torch.equal(load_raw("synthetic", "train")[0][0], x1[0])
    # hard-coded stats are the actual stats of the train split
    f = load_raw("synthetic", "train")[0].double().div(255)
    assert f.mean().item() == pytest.approx(info.mean[0], abs=1e-6)
    assert f.std(unbiased=False).item() == pytest.approx(info.std[0], abs=1e-6)
    z = normalize_images(load_raw("synthetic", "train")[0], info)
    assert abs(z.mean().item()) < 1e-4 and z.std().item() == pytest.approx(1.0, abs=1e-3)


def test_synthetic_is_learnable_without_label_pixels():
    info = DATASETS["synthetic"]
    xtr, ytr = load_raw("synthetic", "train")
    xte, yte = load_raw("synthetic", "test")
    ztr, zte = normalize_images(xtr, info), normalize_images(xte, info)
    ztr[:, :10] = 0  # the label embedding overwrites these
    zte[:, :10] = 0
    centroids = torch.stack([ztr[ytr == c].mean(0) for c in range(10)])
    pred = torch.cdist(zte, centroids).argmin(1)
    assert (pred == yte).float().mean().item() > 0.95


# ---------------------------------------------------------------------------------------------
# real FashionMNIST (Debian's dataset-fashion-mnist)
# ---------------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAVE_DEBIAN_FMNIST, reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(ds, "SYSTEM_DIRS", {"fashionmnist": (ds.DEBIAN_FASHION_MNIST_DIR,)})
    empty = tmp_path / "empty"
    x, y = load_raw("fashionmnist", "train", empty, download=False)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64 and x.is_contiguous()
    assert tuple(x.shape) == (60000, 1, 28, 28) and tuple(y.shape) == (60000,)
    assert torch.bincount(y, minlength=10).tolist() == [6000] * 10
    xt, yt = load_raw("fashion-mnist", "test", empty, download=False)
    assert tuple(xt.shape) == (10000, 1, 28, 28) and tuple(yt.shape) == (10000,)
    assert torch.bincount(yt, minlength=10).tolist() == [1000] * 10
    # first training label of FashionMNIST is 9 (ankle boot), first test label is 9 as well
    assert y[0].item() == 9 and yt[0].item() == 9
    z = normalize_images(x, DATASETS["fashionmnist"])
    assert tuple(z.shape) == (60000, 784) and z.dtype == torch.float32
    assert z.max().item() == pytest.approx(2.8215, abs=1e-4)
    assert z.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-5)
