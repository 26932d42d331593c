"""Dataset loading for ffterm (docs/algorithms.md#data).

This module finds and reads the four image datasets of the study (MNIST, FashionMNIST, SVHN,
CIFAR10) plus a small generated ``"synthetic"`` set, and returns them as raw ``uint8`` tensors.
It has no UI dependencies and caches nothing on disk (only a torchvision download writes files).

Where the files are looked for, in order (the first location that holds the requested split wins):

1. ``data_dir`` in torchvision's own layouts::

       MNIST         DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
       FashionMNIST  DIR/FashionMNIST/raw/...            (same file names)
       SVHN          DIR/{train,test}_32x32.mat          (also DIR/SVHN/, DIR/svhn/)
       CIFAR10       DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}

2. MNIST / FashionMNIST only: plain IDX folders ``DIR/<name>/`` (e.g. ``DIR/mnist``,
   ``DIR/fashion-mnist``) or ``DIR`` itself.
3. FashionMNIST only: the system folders in :data:`SYSTEM_DIRS` (Debian's
   ``dataset-fashion-mnist`` package installs ``/usr/share/datasets/fashion-mnist``).
4. If ``download`` is true: torchvision's dataset class downloads into ``data_dir`` (with a short
   socket timeout), and the files it wrote are read by the same readers.

If all of that fails, :class:`DatasetNotFound` is raised; its message is a single line naming the
dataset, every path searched, and how to fix it. A file that exists but cannot be parsed raises
:class:`DatasetCorrupt` naming the file.

The readers are deliberately small and vectorised: IDX files are parsed with numpy (no PIL, no
per-sample work), SVHN ``.mat`` files with :func:`scipy.io.loadmat`, CIFAR10 batches with a
restricted unpickler that only reconstructs numpy arrays.

``DATASETS`` carries the per-dataset constants of docs/algorithms.md#data (input shape, hidden width, normalisation
mean/std; FashionMNIST deliberately uses MNIST's constants, as the published code does).
:func:`normalize_images` applies them: ``/255``, per-channel ``(x - mean) / std``, flattened
channel-major. The label embedding is done elsewhere.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import os
import pickle
import socket
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST_DIR",
    "SPLITS",
    "SYSTEM_DIRS",
    "DatasetCorrupt",
    "DatasetError",
    "DatasetInfo",
    "DatasetNotFound",
    "canonical_name",
    "class_label",
    "class_names",
    "default_data_dir",
    "load_raw",
    "normalize_images",
    "searched_paths",
]

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "test")


# --------------------------------------------------------------------------------------------
# Dataset constants
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of a dataset.

    Attributes:
        name: canonical key in :data:`DATASETS` (lower case, no punctuation).
        shape: image shape ``(C, H, W)``.
        hidden: width of every hidden layer used for this dataset (docs/algorithms.md#data).
        mean: per-channel mean used for normalisation (pixels scaled to [0, 1] first).
        std: per-channel standard deviation used for normalisation.
        num_classes: number of classes (labels are ``0 .. num_classes - 1``).
        class_names: short display name of each class (the digits themselves for digit datasets).
    """

    name: str
    shape: tuple[int, int, int]
    hidden: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int = 10
    class_names: tuple[str, ...] = tuple(str(c) for c in range(10))
    train_size: int = 60_000  # images in the training split

    @property
    def channels(self) -> int:
        """Number of image channels."""
        return self.shape[0]

    @property
    def input_dim(self) -> int:
        """Length of a flattened image, ``C * H * W``."""
        c, h, w = self.shape
        return c * h * w


# Synthetic dataset parameters (see _make_synthetic). Its mean/std are the actual statistics of
# the generated *train* split, computed once and hard-coded; tests check they still match.
_SYN_SEED = 0x5EED_FF
_SYN_SHAPE = (1, 12, 12)
_SYN_TRAIN = 2000
_SYN_TEST = 500
_SYN_MEAN = 0.4194118873
_SYN_STD = 0.2747670017

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo("mnist", (1, 28, 28), 1000, (0.1307,), (0.3081,)),
    # MNIST's constants on purpose: that is what the published code does (docs/algorithms.md#data).
    "fashionmnist": DatasetInfo(
        "fashionmnist",
        (1, 28, 28),
        1000,
        (0.1307,),
        (0.3081,),
        class_names=("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"),
    ),
    "svhn": DatasetInfo(
        "svhn", (3, 32, 32), 3072, (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), train_size=73_257
    ),
    "cifar10": DatasetInfo(
        "cifar10",
        (3, 32, 32),
        3072,
        (0.5, 0.5, 0.5),
        (0.5, 0.5, 0.5),
        class_names=("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        train_size=50_000,
    ),
    "synthetic": DatasetInfo("synthetic", _SYN_SHAPE, 64, (_SYN_MEAN,), (_SYN_STD,), train_size=_SYN_TRAIN),
}

# Human-facing names (used in messages) and torchvision's folder/class names.
_DISPLAY = {
    "mnist": "MNIST",
    "fashionmnist": "FashionMNIST",
    "svhn": "SVHN",
    "cifar10": "CIFAR10",
    "synthetic": "synthetic",
}

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

#: System-wide folders searched after ``data_dir`` (plain IDX layout). Tests monkeypatch this.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashionmnist": (DEBIAN_FASHION_MNIST_DIR,),
}

# Sub-folders of DIR that may hold plain IDX files (searched before DIR itself).
_PLAIN_SUBDIRS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist", "MNIST"),
    "fashionmnist": ("fashionmnist", "fashion-mnist", "fashion_mnist", "FashionMNIST"),
}

_IDX_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_FILES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}

#: Socket timeout (seconds) while torchvision tries to download.
DOWNLOAD_TIMEOUT_S = 8.0


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class DatasetError(Exception):
    """Base class of this module's data errors (catch this to handle both kinds)."""


class DatasetNotFound(DatasetError):
    """No usable copy of a dataset was found (and a download was off or failed).

    ``str(e)`` is one line: the dataset, every path searched, and the fix.
    The structured pieces are also available as ``e.dataset``, ``e.split`` and ``e.paths``.
    """

    def __init__(
        self,
        message: str,
        *,
        dataset: str = "",
        split: str = "",
        paths: tuple[Path, ...] = (),
    ) -> None:
        super().__init__(_one_line(message))
        self.dataset = dataset
        self.split = split
        self.paths = tuple(paths)


class DatasetCorrupt(DatasetError, ValueError):
    """A dataset file exists but is unreadable (bad magic, truncated, wrong shape...).

    ``str(e)`` is one line naming the file; ``e.path`` is the file.
    """

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(_one_line(message))
        self.path = path


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _corrupt(path: Path, what: str) -> DatasetCorrupt:
    return DatasetCorrupt(
        f"corrupt dataset file {path}: {what}; delete or replace it (or point FFTERM_DATA / --data-dir elsewhere)",
        path=path,
    )


# --------------------------------------------------------------------------------------------
# Names and locations
# --------------------------------------------------------------------------------------------


def canonical_name(name: str) -> str:
    """Map a user-given dataset name to its :data:`DATASETS` key.

    Case and ``-``/``_``/space are ignored, so ``"FashionMNIST"``, ``"fashion-mnist"`` and
    ``"CIFAR-10"`` all work. Raises ``ValueError`` listing the valid names otherwise.
    """
    key = "".join(ch for ch in str(name).lower() if ch not in "-_ ")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(DATASETS))}")
    return key


def _info(dataset: str) -> DatasetInfo | None:
    return DATASETS.get("".join(ch for ch in str(dataset).lower() if ch not in "-_ "))


def num_classes(dataset: str) -> int:
    """The number of classes of a dataset (10 for an unknown one, as every known dataset has)."""
    info = _info(dataset)
    return info.num_classes if info is not None else 10


def class_names(dataset: str, n: int = 10) -> list[str]:
    """Display names of the first ``n`` classes of a dataset; digits for unnamed classes and unknown datasets."""
    info = _info(dataset)
    names = info.class_names if info is not None else ()
    return [names[i] if i < len(names) else str(i) for i in range(n)]


def class_label(dataset: str, c: int) -> str:
    """'3 Dress' for named classes, '3' for digits."""
    name = class_names(dataset, max(10, c + 1))[c]
    return str(c) if name == str(c) else f"{c} {name}"


def default_data_dir() -> Path:
    """Where datasets are looked for (and downloaded to) when no ``data_dir`` is given.

    ``$FFTERM_DATA`` if set and non-empty, else ``platformdirs.user_cache_dir("ffterm")/data``
    (``~/.cache/ffterm/data`` on Linux). The folder is not created here.
    """
    env = os.environ.get("FFTERM_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    try:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("ffterm"))
    except ImportError:  # a bare GPU box may lack platformdirs
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "ffterm"
    return base / "data"


def _resolve_dir(data_dir: str | Path | None) -> Path:
    return default_data_dir() if data_dir is None else Path(data_dir).expanduser()


def _dedupe(paths: list[Path]) -> list[Path]:
    seen: set[Path] = set()
    out = []
    for p in paths:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def searched_paths(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """The folders searched for ``name``, in search order (first hit wins).

    For MNIST/FashionMNIST each folder is checked for the IDX files of the split (plain or
    ``.gz``); for SVHN for ``{train,test}_32x32.mat``; for CIFAR10 for the python batches.
    ``"synthetic"`` needs no files and returns ``[]``.
    """
    key = canonical_name(name)
    root = _resolve_dir(data_dir)
    paths: list[Path]
    if key in ("mnist", "fashionmnist"):
        paths = [root / _DISPLAY[key] / "raw"]
        paths += [root / sub for sub in _PLAIN_SUBDIRS[key]]
        paths.append(root)
        paths += list(SYSTEM_DIRS.get(key, ()))
    elif key == "svhn":
        paths = [root, root / "SVHN", root / "svhn"]
    elif key == "cifar10":
        paths = [root / _CIFAR_DIR, root / "CIFAR10" / _CIFAR_DIR, root / "cifar10" / _CIFAR_DIR]
    else:
        paths = []
    return _dedupe(paths)


def _expected_files(key: str, split: str) -> list[str]:
    if key in ("mnist", "fashionmnist"):
        return [f + "[.gz]" for f in _IDX_FILES[split]]
    if key == "svhn":
        return [_SVHN_FILES[split]]
    if key == "cifar10":
        files = _CIFAR_FILES[split]
        return [f"{files[0]}..{files[-1][-1]}"] if len(files) > 1 else list(files)
    return []


def _fix_hint(key: str, root: Path) -> str:
    disp = _DISPLAY[key]
    folder = {
        "mnist": f"{root / 'MNIST' / 'raw'} (or plain IDX files in {root / 'mnist'})",
        "fashionmnist": f"{root / 'FashionMNIST' / 'raw'} (or plain IDX files in {root / 'fashion-mnist'})",
        "svhn": f"{root} (train_32x32.mat, test_32x32.mat)",
        "cifar10": f"{root / _CIFAR_DIR}",
    }[key]
    parts = []
    if key == "fashionmnist":
        parts.append("install Debian's dataset-fashion-mnist (apt install dataset-fashion-mnist)")
    parts.append(f"put torchvision's {disp} files in {folder}")
    parts.append("set FFTERM_DATA / --data-dir to a folder that has them")
    parts.append("connect to the internet and allow a download")
    return "fix: " + ", or ".join(parts)


# --------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------

_IDX_UBYTE = 0x08


def _read_bytes(path: Path) -> bytes:
    """Whole file contents, gunzipped if it is gzip data (detected by content, not name)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            return f.read()
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _corrupt(path, f"broken gzip data ({type(e).__name__}: {e})") from e
    except OSError as e:
        raise _corrupt(path, f"cannot read ({e})") from e


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (plain or gzip) into an ``ndim``-D uint8 array.

    Checks the magic number (``0x0000 08 <ndim>``) and that the payload length matches the
    big-endian dimensions exactly; raises :class:`DatasetCorrupt` naming the file otherwise.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise _corrupt(path, f"only {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise _corrupt(
            path,
            f"bad IDX magic number 0x{raw[:4].hex()} (expected 0x000008{ndim:02x})",
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise _corrupt(path, "truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64))
    got = len(raw) - header
    if got != expected:
        state = "truncated" if got < expected else "has trailing bytes"
        raise _corrupt(path, f"{state}: header says {dims} = {expected} bytes of data, file has {got}")
    images: np.ndarray = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()
    return images


def _find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem`` if it exists, else ``folder/stem.gz``, else None (plain preferred)."""
    for cand in (folder / stem, folder / (stem + ".gz")):
        if cand.is_file():
            return cand
    return None


def _check_labels(labels: np.ndarray, info: DatasetInfo, path: Path) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= info.num_classes):
        raise _corrupt(
            path,
            f"labels outside 0..{info.num_classes - 1} (found {labels.min()}..{labels.max()})",
        )


def _check_pair(images: np.ndarray, labels: np.ndarray, info: DatasetInfo, img_path: Path, lbl_path: Path) -> None:
    if images.shape[1:] != info.shape:
        raise _corrupt(
            img_path,
            f"images have shape {tuple(images.shape[1:])}, expected {info.shape} for {info.name}",
        )
    if images.shape[0] != labels.shape[0]:
        raise _corrupt(
            lbl_path,
            f"{labels.shape[0]} labels for {images.shape[0]} images in {img_path.name}",
        )
    _check_labels(labels, info, lbl_path)


def _load_idx_dir(folder: Path, key: str, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    img_stem, lbl_stem = _IDX_FILES[split]
    img_path = _find_file(folder, img_stem)
    lbl_path = _find_file(folder, lbl_stem)
    if img_path is None or lbl_path is None:
        return None
    images = read_idx(img_path, 3)[:, None, :, :]  # (N, 1, H, W)
    labels = read_idx(lbl_path, 1)
    _check_pair(images, labels, DATASETS[key], img_path, lbl_path)
    return images, labels


def _load_svhn_dir(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    path = folder / _SVHN_FILES[split]
    if not path.is_file():
        return None
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - scipy is a declared dependency
        raise DatasetError(f"reading SVHN ({path}) needs scipy: pip install scipy") from e
    try:
        mat = scipy.io.loadmat(str(path), variable_names=("X", "y"))
    except Exception as e:  # scipy raises many types (ValueError, OSError, TypeError, ...)
        raise _corrupt(path, f"not a readable .mat file ({type(e).__name__}: {e})") from e
    if "X" not in mat or "y" not in mat:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise _corrupt(path, f"missing variable 'X' or 'y' (has {names})")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4:
        raise _corrupt(path, f"X has shape {x.shape}, expected H x W x C x N")
    # H x W x C x N  ->  N x C x H x W (as torchvision does)
    images = np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))).astype(np.uint8, copy=False)
    labels = np.asarray(y).reshape(-1).astype(np.int64)
    labels[labels == 10] = 0  # SVHN stores digit 0 as label 10
    _check_pair(images, labels, DATASETS["svhn"], path, path)
    return images, labels


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for CIFAR batches that refuses anything but numpy array reconstruction."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def _get(d: dict[Any, Any], key: str) -> Any:
    if key in d:
        return d[key]
    return d.get(key.encode("ascii"))


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            # latin1: needed for the numpy arrays pickled by Python 2 in the original files.
            d = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except Exception as e:
        raise _corrupt(path, f"not a readable CIFAR batch ({type(e).__name__}: {e})") from e
    if not isinstance(d, dict):
        raise _corrupt(path, f"expected a dict, found {type(d).__name__}")
    data, labels = _get(d, "data"), _get(d, "labels")
    if data is None or labels is None:
        raise _corrupt(path, "missing 'data' or 'labels'")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise _corrupt(path, f"data has shape {data.shape}, expected N x 3072")
    lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    images = data.astype(np.uint8, copy=False).reshape(-1, 3, 32, 32)
    _check_pair(images, lab, DATASETS["cifar10"], path, path)
    return images, lab


def _load_cifar_dir(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    files = [folder / f for f in _CIFAR_FILES[split]]
    if not all(p.is_file() for p in files):
        return None
    parts = [_read_cifar_batch(p) for p in files]
    images = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    return images, labels


def _search(key: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray] | None:
    for folder in searched_paths(key, root):
        if not folder.is_dir():
            continue
        if key in ("mnist", "fashionmnist"):
            hit = _load_idx_dir(folder, key, split)
        elif key == "svhn":
            hit = _load_svhn_dir(folder, split)
        else:
            hit = _load_cifar_dir(folder, split)
        if hit is not None:
            log.debug("loaded %s/%s from %s", key, split, folder)
            return hit
    return None


# --------------------------------------------------------------------------------------------
# Download (torchvision)
# --------------------------------------------------------------------------------------------


def _download(key: str, split: str, root: Path) -> None:
    """Let torchvision download ``key`` into ``root``; raises on any failure.

    Network errors surface quickly thanks to a temporary socket timeout. torchvision's own
    console output is swallowed (it would corrupt a terminal UI); progress goes to the log.
    """
    try:
        import torchvision.datasets as tvd
    except ImportError as e:
        raise RuntimeError("torchvision is not installed") from e
    root.mkdir(parents=True, exist_ok=True)
    train = split == "train"
    old_timeout = socket.getdefaulttimeout()
    sink = io.StringIO()
    log.info("downloading %s (%s) into %s", _DISPLAY[key], split, root)
    try:
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            if key == "mnist":
                tvd.MNIST(str(root), train=train, download=True)
            elif key == "fashionmnist":
                tvd.FashionMNIST(str(root), train=train, download=True)
            elif key == "svhn":
                tvd.SVHN(str(root), split=split, download=True)
            elif key == "cifar10":
                tvd.CIFAR10(str(root), train=train, download=True)
            else:  # pragma: no cover
                raise RuntimeError(f"no download for {key}")
    finally:
        socket.setdefaulttimeout(old_timeout)
        if sink.getvalue():
            log.debug("torchvision output: %s", sink.getvalue())


# --------------------------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------------------------


def _make_synthetic() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Generate the deterministic ``"synthetic"`` dataset (both splits).

    Each class has a fixed random binary prototype on a 12x12 grid (about 35 % of pixels
    "on"); a sample is its class prototype (on = 150, off = 80) plus i.i.d. Gaussian pixel noise
    (sigma 70), clipped to 0..255. Classes are balanced (200 train / 50 test each) and the order
    is shuffled. Row 0, columns 0-9 (overwritten by the label embedding) carry no special
    information; the other 134 pixels make the classes easy for a small MLP (>95 %).
    """
    rng = np.random.default_rng(_SYN_SEED)
    c, h, w = _SYN_SHAPE
    n_cls = DATASETS["synthetic"].num_classes
    protos = np.where(rng.random((n_cls, c, h, w)) < 0.35, 150.0, 80.0)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, n in (("train", _SYN_TRAIN), ("test", _SYN_TEST)):
        labels = np.repeat(np.arange(n_cls, dtype=np.int64), n // n_cls)
        labels = labels[rng.permutation(n)]
        noise = rng.normal(0.0, 70.0, size=(n, c, h, w))
        images = np.clip(np.rint(protos[labels] + noise), 0, 255).astype(np.uint8)
        out[split] = (images, labels)
    return out


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_raw(
    name: str,
    split: str,
    data_dir: str | Path | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of a dataset as raw tensors.

    Args:
        name: dataset name (see :data:`DATASETS`; case and ``-``/``_`` are ignored).
        split: ``"train"`` or ``"test"`` (the standard splits).
        data_dir: where to look first and where to download to; ``None`` means
            :func:`default_data_dir`.
        download: if nothing is found, let torchvision download into ``data_dir``.

    Returns:
        ``(images, labels)``: ``images`` uint8 ``(N, C, H, W)`` contiguous, ``labels`` int64
        ``(N,)``. Fresh tensors on every call (nothing is cached in memory either).

    Raises:
        ValueError: unknown dataset name or split.
        DatasetNotFound: no copy found (and no download, or the download failed).
        DatasetCorrupt: a file was found but could not be parsed.
    """
    key = canonical_name(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")

    if key == "synthetic":
        images, labels = _make_synthetic()[split]
        return _to_tensors(images, labels)

    root = _resolve_dir(data_dir)
    hit = _search(key, split, root)
    reason = "download disabled"
    if hit is None and download:
        try:
            _download(key, split, root)
        except Exception as e:  # network, HTTP, checksum, permissions: all mean "not available"
            reason = f"download failed: {type(e).__name__}: {e}"
            log.info("%s download failed: %s", key, e)
        else:
            reason = "download finished but its files were not found"
            hit = _search(key, split, root)
    if hit is None:
        paths = searched_paths(key, root)
        wanted = " and ".join(_expected_files(key, split))
        msg = (
            f"dataset {_DISPLAY[key]} ({split} split) not found: looked for {wanted} in "
            f"{', '.join(str(p) for p in paths)} ({reason}); {_fix_hint(key, root)}"
        )
        raise DatasetNotFound(msg, dataset=key, split=split, paths=tuple(paths))
    return _to_tensors(*hit)


def _to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    import torch  # here, not at the top: the dataset description (shapes, class names) is read without torch

    img = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    lbl = torch.from_numpy(np.ascontiguousarray(labels, dtype=np.int64))
    return img.contiguous(), lbl.contiguous()


def normalize_images(images: torch.Tensor, info: DatasetInfo | str) -> torch.Tensor:
    """Scale uint8 images to [0, 1], normalise per channel, flatten channel-major.

    Args:
        images: uint8 tensor ``(N, C, H, W)`` as returned by :func:`load_raw`.
        info: the dataset's :class:`DatasetInfo` (or its name).

    Returns:
        float32 tensor ``(N, C*H*W)`` on the same device: ``((x / 255) - mean[c]) / std[c]``.
    """
    import torch

    if isinstance(info, str):
        info = DATASETS[canonical_name(info)]
    if images.dtype != torch.uint8:
        raise TypeError(f"normalize_images expects uint8 images, got {images.dtype}")
    if images.dim() != 4 or images.shape[1] != len(info.mean):
        raise ValueError(
            f"expected images of shape (N, {len(info.mean)}, H, W) for {info.name}, got {tuple(images.shape)}"
        )
    x = images.to(torch.float32).div_(255.0)  # a new tensor: the input is uint8
    mean = torch.tensor(info.mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    x.sub_(mean).div_(std)
    return x.reshape(x.shape[0], -1)
