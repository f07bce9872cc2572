"""Data for the example scripts: HR folders -> (LR, HR) 8-bit pairs, random patches, a resumable sampler.

LR images are made as in the SR literature: the HR image is cropped to a multiple of the scale
(``mod_crop``), downscaled with MATLAB's bicubic (:func:`contrastive_sr_losses.metrics.imresize`,
antialiased) and rounded to 8 bits, as if saved to PNG. Each LR image is computed once per run (kept
in memory as ``uint8``) and, with a cache folder, once per machine.

Training samples are a pure function of ``(seed, position in the sample stream)``: which image, where
the crop is and which flip / rotation are drawn from a generator seeded with that position, so a run
resumed from a checkpoint, a run with a different number of DataLoader workers and a
DistributedDataParallel run over several processes all see exactly the same patches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from contrastive_sr_losses.functional import imresize, quantize

from .runtime import UsageError, derive_seed

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Pair:
    """One image: its name, LR ``(3, h, w)`` and HR ``(3, h * scale, w * scale)`` as uint8.

    ``gray``: the file is a grayscale image (kept here as three equal channels, which is what the
    RGB networks take); evaluation scores it on its one channel, as the literature does.
    """

    name: str
    lr: Tensor
    hr: Tensor
    gray: bool = False


def list_images(folder: str | Path, flag: str) -> list[Path]:
    """The image files of ``folder`` (sorted), or a one-line :class:`UsageError`."""
    folder = Path(folder)
    if not folder.exists():
        raise UsageError(f"{flag} {folder}: no such folder")
    if not folder.is_dir():
        raise UsageError(f"{flag} {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{flag} {folder}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


def _to_rgb8(im: Image.Image, path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 of any Pillow mode, scaled to 8 bits (never clipped).

    16-bit grayscale (``I;16*``, and ``I`` with values in [0, 65535], as 16-bit PNGs open) is scaled
    by 255 / 65535 and rounded; 16-bit RGB(A) PNGs are opened by Pillow as 8-bit RGB(A) (the high
    byte of each sample). Modes without a known white (32-bit float ``F``, 32-bit integers beyond
    16 bits) are refused: their [0, 1] scaling would be a guess.
    """
    if im.mode.startswith("I"):
        values = np.asarray(im).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UsageError(
                f"image {path}: {im.mode} pixels beyond 16 bits ({values.min()}..{values.max()}) have no known "
                "white level; save it as an 8- or 16-bit PNG"
            )
        gray = np.rint(values * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if im.mode == "F":
        raise UsageError(f"image {path}: 32-bit float (mode F) has no known white level; save it as an 8- or 16-bit PNG")
    return np.asarray(im.convert("RGB"))


def read_rgb(path: Path) -> Tensor:
    """``(3, H, W)`` uint8 RGB; grayscale, palette, RGBA and 16-bit images are converted to 8-bit RGB
    (16-bit values scaled, see :func:`_to_rgb8`)."""
    try:
        with Image.open(path) as im:
            rgb = _to_rgb8(im, path)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UsageError(f"cannot read image {path}: {err}") from err
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def is_grayscale(path: Path) -> bool:
    """True for a one-band image file (PIL modes ``1``, ``L``, ``LA``, ``I``, ``I;16``, ``F``), e.g.
    Set14's ``bridge.png``; reads only the header."""
    try:
        with Image.open(path) as im:
            return set(im.getbands()) - {"A"} <= {"1", "L", "I", "F"}
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UsageError(f"cannot read image {path}: {err}") from err


def write_rgb(img: Tensor, path: Path) -> None:
    """Save ``(3, H, W)`` (uint8, or float in [0, 1], rounded) as an 8-bit RGB image."""
    if img.is_floating_point():
        img = quantize(img.detach().float().cpu()).mul(255).round().to(torch.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img.permute(1, 2, 0).cpu().numpy()).save(path)


def to_float(img: Tensor) -> Tensor:
    """uint8 -> float32 in [0, 1]."""
    return img.to(torch.float32).div_(255.0)


def mod_crop(hr: Tensor, scale: int) -> Tensor:
    """Crop the bottom / right so that H and W are multiples of ``scale`` (the literature's modcrop)."""
    h, w = hr.shape[-2:]
    return hr[..., : h - h % scale, : w - w % scale]


def make_lr(hr: Tensor, scale: int) -> Tensor:
    """uint8 ``(3, H, W)`` with H, W multiples of ``scale`` -> the 8-bit MATLAB-bicubic LR image."""
    lr = quantize(imresize(hr.to(torch.float64) / 255.0, 1.0 / scale))
    return lr.mul(255.0).round().to(torch.uint8)


def _cache_file(cache_dir: Path, path: Path, scale: int) -> Path:
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|x{scale}|matlab-bicubic-v1"
    return cache_dir / f"x{scale}" / (hashlib.sha1(key.encode()).hexdigest() + ".png")


def load_pairs(
    folders: Sequence[str | Path], scale: int, flag: str, cache_dir: Path | None = None
) -> list[Pair]:
    """Read every image of ``folders``, mod-crop it to ``scale`` and make its LR image (cached)."""
    pairs = []
    for folder in folders:
        for path in list_images(folder, flag):
            hr = mod_crop(read_rgb(path), scale)
            if min(hr.shape[-2:]) < scale:
                raise UsageError(f"image {path} ({tuple(hr.shape[-2:])}) is smaller than the scale {scale}")
            cached = _cache_file(cache_dir, path, scale) if cache_dir is not None else None
            lr = read_rgb(cached) if cached is not None and cached.is_file() else None
            if lr is None or tuple(lr.shape[-2:]) != (hr.shape[-2] // scale, hr.shape[-1] // scale):
                lr = make_lr(hr, scale)
                if cached is not None:
                    tmp = cached.with_suffix(".tmp.png")
                    write_rgb(lr, tmp)
                    tmp.replace(cached)
            pairs.append(Pair(f"{Path(folder).name}/{path.name}", lr, hr, is_grayscale(path)))
    return pairs


def random_patch(
    pair: Pair, lr_patch: int, scale: int, gen: torch.Generator, channel_shuffle: bool = False
) -> tuple[Tensor, Tensor]:
    """Aligned random ``(lr_patch, lr_patch)`` / ``(lr_patch * scale, ...)`` crops, random flips and
    90-degree rotation (the 8 dihedral transforms with equal probability), as float in [0, 1].
    ``channel_shuffle``: also one random permutation of the colour channels for both (RRLFN's
    augmentation, Guo et al., section 2.1); drawn after the others, so the crops and flips are the same
    with or without it."""
    h, w = pair.lr.shape[-2:]
    y = int(torch.randint(h - lr_patch + 1, (1,), generator=gen))
    x = int(torch.randint(w - lr_patch + 1, (1,), generator=gen))
    lr = pair.lr[:, y : y + lr_patch, x : x + lr_patch]
    hr = pair.hr[:, y * scale : (y + lr_patch) * scale, x * scale : (x + lr_patch) * scale]
    hflip, vflip, rot = torch.randint(2, (3,), generator=gen).tolist()
    if hflip:
        lr, hr = lr.flip(-1), hr.flip(-1)
    if vflip:
        lr, hr = lr.flip(-2), hr.flip(-2)
    if rot:
        lr, hr = lr.transpose(-1, -2), hr.transpose(-1, -2)
    if channel_shuffle:
        perm = torch.randperm(lr.shape[0], generator=gen)
        lr, hr = lr[perm], hr[perm]
    return to_float(lr.contiguous()), to_float(hr.contiguous())


class PatchDataset(Dataset):
    """Random training patches; item ``(image index, sample seed)`` -> ``(lr, hr)`` float tensors."""

    def __init__(self, pairs: Sequence[Pair], scale: int, lr_patch: int, channel_shuffle: bool = False) -> None:
        self.pairs = list(pairs)
        self.scale = scale
        self.lr_patch = lr_patch
        self.channel_shuffle = channel_shuffle

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, seed = key
        gen = torch.Generator().manual_seed(seed)
        return random_patch(self.pairs[index], self.lr_patch, self.scale, gen, self.channel_shuffle)


class StreamBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of one process, for iterations ``start_iter .. total_iters - 1``; resumable anywhere.

    The global sample stream is the concatenation over epochs of a seeded permutation of the images
    (every image once per epoch, in a new order each epoch, as ``DistributedSampler(shuffle=True)``
    with ``set_epoch`` does). Iteration ``t`` takes stream positions ``t * B .. (t + 1) * B - 1``
    (``B`` = the global batch); process ``rank`` of ``world`` gets its contiguous ``B / world`` share.
    Unlike ``DistributedSampler``, it can start in the middle of an epoch, so ``--resume`` continues the
    exact patch sequence. Each sample's crop seed is derived from ``(seed, stream position)``.
    """

    def __init__(
        self, n_images: int, global_batch: int, seed: int, start_iter: int, total_iters: int,
        rank: int = 0, world: int = 1,
    ) -> None:
        if global_batch % world:
            raise UsageError(f"--batch {global_batch} must be a multiple of the number of processes {world}")
        self.n, self.batch, self.seed = n_images, global_batch, seed
        self.start, self.total, self.rank, self.world = start_iter, total_iters, rank, world
        self.local = global_batch // world
        self._perms: dict[int, list[int]] = {}

    def _image_at(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
            self._perms = {epoch: torch.randperm(self.n, generator=gen).tolist()}  # keep one epoch
        return self._perms[epoch][offset]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for it in range(self.start, self.total):
            first = it * self.batch + self.rank * self.local
            yield [(self._image_at(p), derive_seed(self.seed, "sample", p)) for p in range(first, first + self.local)]

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def load_test_sets(folders: Sequence[str | Path], scale: int, flag: str = "--test") -> dict[str, list[Pair]]:
    """``{folder name: pairs}`` for evaluation (mod-cropped HR, MATLAB-bicubic 8-bit LR)."""
    sets: dict[str, list[Pair]] = {}
    for folder in folders:
        name = Path(folder).name or str(folder)
        if name in sets:
            raise UsageError(f"{flag}: two test folders are named {name!r}")
        sets[name] = load_pairs([folder], scale, flag)
    return sets
