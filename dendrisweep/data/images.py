"""Image data for the MobileNet task: decoded once into memory, never downloaded.

Sources, by what --data-directory holds:
- an ImageFolder tree (`class_name/image.png`), or `train/` + `val/` (or `test/`) trees of one;
- CIFAR-10 as torchvision stores it (`cifar-10-batches-py/`), read with download=False;
- nothing: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes), upscaled.
Every image is decoded and resized once, stored as float32 (N, 3, S, S) normalised with the
ImageNet statistics (what pretrained MobileNet weights expect), so an epoch never re-decodes files.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dendrisweep.data.dataset import LabelledArrays
from dendrisweep.errors import UsageError

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)[:, None, None]
VALIDATION_SHARE = 0.2
_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def _normalise(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), ImageNet-normalised."""
    return ((images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) to (N, size, size, 3), bilinear, in batches through torch."""
    import torch

    if images.shape[1:3] == (size, size):
        return images
    out = []
    for start in range(0, len(images), 1024):
        batch = torch.from_numpy(images[start:start + 1024]).permute(0, 3, 1, 2).float()
        resized = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True,
                                                  align_corners=False)
        out.append(resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def _split(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[LabelledArrays, LabelledArrays]:
    """A stratified validation share, fixed by the data seed."""
    rng = np.random.default_rng([seed, 11])
    is_val = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        is_val[rng.choice(members, size=max(1, round(len(members) * VALIDATION_SHARE)), replace=False)] = True
    return (LabelledArrays(_normalise(images[~is_val]), labels[~is_val]),
            LabelledArrays(_normalise(images[is_val]), labels[is_val]))


def digits(size: int, seed: int) -> tuple[LabelledArrays, LabelledArrays, int]:
    """scikit-learn's bundled handwritten digits (no download), grey levels to RGB, upscaled."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    grey = (bunch.images / 16.0 * 255).round().astype(np.uint8)
    images = _resize(np.repeat(grey[..., None], 3, axis=-1), size)
    train, val = _split(images, bunch.target.astype(np.int64), seed)
    return train, val, 10


def _cifar10(root: Path, size: int) -> tuple[LabelledArrays, LabelledArrays, int]:
    from torchvision.datasets import CIFAR10

    try:
        splits = [CIFAR10(str(root), train=train, download=False) for train in (True, False)]
    except RuntimeError as exc:  # "Dataset not found or corrupted"
        raise UsageError(f"CIFAR-10 in {root}: {exc} (download it yourself; nothing is downloaded at run time)"
                         ) from None
    train, val = ((LabelledArrays(_normalise(_resize(np.asarray(s.data), size)), np.asarray(s.targets, np.int64)))
                  for s in splits)
    return train, val, 10


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_folder(root: Path, classes: list[str], size: int) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(f for f in (root / name).rglob("*") if f.suffix.lower() in _EXTENSIONS)
        if not files:
            raise UsageError(f"image folder {root}: class {name!r} has no images ({', '.join(_EXTENSIONS)})")
        for file in files:
            try:
                with Image.open(file) as image:
                    images.append(np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)))
            except (UnidentifiedImageError, OSError) as exc:
                raise UsageError(f"image folder {root}: cannot read {file} ({exc})") from None
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _image_folder(root: Path, size: int, seed: int) -> tuple[LabelledArrays, LabelledArrays, int]:
    parts = {p.name: p for p in _class_dirs(root)}
    train_dir, val_dir = parts.get("train"), parts.get("val") or parts.get("test")
    if train_dir is not None and val_dir is not None:
        classes = [p.name for p in _class_dirs(train_dir)]
        val_classes = [p.name for p in _class_dirs(val_dir)]
        if classes != val_classes:
            raise UsageError(f"image folder {root}: train/ has classes {classes} but {val_dir.name}/ has "
                             f"{val_classes}")
        if len(classes) < 2:
            raise UsageError(f"image folder {train_dir}: needs at least two class folders, found {len(classes)}")
        train, val = (LabelledArrays(_normalise(x), y) for x, y in
                      (_read_folder(d, classes, size) for d in (train_dir, val_dir)))
        return train, val, len(classes)
    classes = list(parts)
    if len(classes) < 2:
        raise UsageError(f"image folder {root}: needs at least two class folders (ImageFolder layout), "
                         f"found {len(classes)}")
    images, labels = _read_folder(root, classes, size)
    train, val = _split(images, labels, seed)
    return train, val, len(classes)


def load_images(directory: Path | None, config: Mapping[str, Any]) -> tuple[LabelledArrays, LabelledArrays, int, str]:
    """(train, validation, number of classes, source description) for the MobileNet task."""
    size, seed = config["image_size"], config["data_seed"]
    if directory is None:
        return (*digits(size, seed), f"scikit-learn digits at {size}x{size}")
    if not directory.is_dir():
        raise UsageError(f"data directory {directory} does not exist")
    if (directory / "cifar-10-batches-py").is_dir():
        return (*_cifar10(directory, size), f"CIFAR-10 in {directory} at {size}x{size}")
    return (*_image_folder(directory, size, seed), f"image folder {directory} at {size}x{size}")
