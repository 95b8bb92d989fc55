"""Posed-photo datasets: NeRF "Blender synthetic" and nerfstudio ``transforms.json``.

Blender layout: ``transforms_{train,val,test}.json``, each with ``camera_angle_x``
(horizontal field of view, radians) and ``frames`` holding ``file_path`` (the
extension is optional; ``.png`` is tried) and a 4x4 camera-to-world
``transform_matrix`` in the OpenGL convention (camera looks down -Z, +Y up).

nerfstudio layout: one ``transforms.json`` with intrinsics ``fl_x, fl_y, cx, cy,
w, h`` at the top level or per frame; it has no splits, so every frame is used
for training and every 8th frame (0, 8, ...) is held out as ``test`` / ``val``.

RGBA images are composited on a white background (``rgb * a + (1 - a)``), the
standard benchmark setting; the alpha is kept for tests and masks. Images are
cached as uint8 (4 bytes per pixel); a cache larger than ``max_cache_bytes``
is refused with a hint to downscale.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rbfield.errors import RbfieldError

SPLITS = ("train", "val", "test")
#: Default bound of the decoded image cache (bytes).
MAX_CACHE_BYTES = 2 * 1024**3


@dataclass
class Views:
    """The photos of one split and their cameras.

    Attributes:
        rgba: (N, H, W, 4) uint8 images (straight alpha).
        poses: (N, 4, 4) float32 camera-to-world matrices, OpenGL convention.
        intrinsics: (N, 4) float32 ``fx, fy, cx, cy`` in pixels.
        names: file stem of each view.
    """

    rgba: torch.Tensor
    poses: torch.Tensor
    intrinsics: torch.Tensor
    names: list[str]

    @property
    def count(self) -> int:
        return self.rgba.shape[0]

    @property
    def height(self) -> int:
        return self.rgba.shape[1]

    @property
    def width(self) -> int:
        return self.rgba.shape[2]

    def rgb_on_white(self, index) -> torch.Tensor:
        """(..., H, W, 3) float32 in [0, 1]: the views composited on white."""
        rgba = self.rgba[index].float() / 255.0
        alpha = rgba[..., 3:4]
        return rgba[..., :3] * alpha + (1.0 - alpha)

    def alpha(self, index) -> torch.Tensor:
        """(..., H, W) float32 opacity in [0, 1]."""
        return self.rgba[index][..., 3].float() / 255.0


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise RbfieldError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    except OSError as error:
        raise RbfieldError(f"{path}: cannot read ({error.strerror})") from None


def _image_path(folder: Path, file_path: str, json_path: Path) -> Path:
    path = folder / file_path
    if path.suffix.lower() in (".png", ".jpg", ".jpeg") and path.exists():
        return path
    for suffix in (".png", ".jpg", ".jpeg"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            return candidate
    raise RbfieldError(f"{json_path}: frame image {file_path!r} not found in {folder}")


def _load_rgba(path: Path, downscale: int) -> np.ndarray:
    """(H, W, 4) uint8; grey/RGB images get an opaque alpha; box-downscaled by an integer factor."""
    from PIL import Image

    try:
        with open_image(path) as image:
            image = image.convert("RGBA")
            if downscale > 1:
                size = (image.width // downscale, image.height // downscale)
                # Premultiply so transparent pixels do not bleed their colour.
                array = np.asarray(image).astype(np.float32) / 255.0
                array[..., :3] *= array[..., 3:4]
                channels = [np.asarray(Image.fromarray(array[..., c]).resize(size, Image.BOX)) for c in range(4)]
                array = np.stack(channels, -1)
                alpha = array[..., 3:4]
                array[..., :3] = np.where(alpha > 0, array[..., :3] / np.maximum(alpha, 1e-8), 0.0)
                return np.clip(np.round(array * 255.0), 0, 255).astype(np.uint8)
            return np.asarray(image).copy()
    except OSError as error:
        raise RbfieldError(f"{path}: not a readable image ({type(error).__name__})") from None


def open_image(path: Path):
    """``PIL.Image.open(path)``, refusing unreadable files and images that declare more pixels than
    Pillow's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``) with a clear error."""
    from PIL import Image

    try:
        return Image.open(path)
    except Image.DecompressionBombError:
        raise RbfieldError(
            f"{path}: the image declares more than {Image.MAX_IMAGE_PIXELS:,} pixels; it is corrupt or far too "
            "large for a scene view"
        ) from None
    except OSError as error:
        raise RbfieldError(f"{path}: not a readable image ({type(error).__name__})") from None


def _pose(matrix, where: str) -> np.ndarray:
    """A camera-to-world 4x4 matrix (a 3x4 one gets its last row), with a clear error for anything else."""
    try:
        pose = np.asarray(matrix, dtype=np.float64)
    except (ValueError, TypeError):
        raise RbfieldError(
            f"{where}: transform_matrix must be a 4x4 matrix of numbers (rows of equal length)"
        ) from None
    if pose.shape == (3, 4):
        pose = np.vstack([pose, [0.0, 0.0, 0.0, 1.0]])
    if pose.shape != (4, 4) or not np.isfinite(pose).all():
        problem = f"shape {pose.shape}" if pose.shape != (4, 4) else "NaN or infinite entries"
        raise RbfieldError(f"{where}: transform_matrix must be a finite 4x4 matrix, got {problem}")
    if abs(np.linalg.det(pose[:3, :3])) < 1e-6:
        raise RbfieldError(f"{where}: transform_matrix has no usable rotation (its 3x3 part is singular)")
    return pose


def _field_of_view(meta: dict, json_path: Path) -> float:
    """``camera_angle_x`` in radians, checked to be an angle a camera can have."""
    try:
        angle = float(meta["camera_angle_x"])
    except (TypeError, ValueError):
        raise RbfieldError(f"{json_path}: camera_angle_x must be a number (radians)") from None
    if not 0.0 < angle < math.pi:
        raise RbfieldError(f"{json_path}: camera_angle_x must be between 0 and pi radians, got {angle}")
    return angle


def _assemble(images: list, poses: list, intrinsics: list, names: list, where: str) -> Views:
    if not images:
        raise RbfieldError(f"{where}: no frames")
    sizes = {image.shape[:2] for image in images}
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise RbfieldError(f"{where}: images have mixed sizes ({listed}); all views of a scene must share one size")
    return Views(
        rgba=torch.from_numpy(np.stack(images)),
        poses=torch.from_numpy(np.stack(poses)).float(),
        intrinsics=torch.tensor(intrinsics, dtype=torch.float32),
        names=names,
    )


def _check_downscale(width: int, height: int, downscale: int, path: Path) -> None:
    """Refuse a downscale that leaves no pixels of a width x height view."""
    if width // downscale < 1 or height // downscale < 1:
        raise RbfieldError(
            f"--downscale {downscale} leaves no pixels of the {width}x{height} views ({path}); "
            f"use at most {min(width, height)}"
        )


def _check_cache(count: int, width: int, height: int, downscale: int, max_cache_bytes: int, where: str) -> None:
    needed = count * (width // downscale) * (height // downscale) * 4
    if needed > max_cache_bytes:
        raise RbfieldError(
            f"{where}: {count} images of {width // downscale}x{height // downscale} need {needed / 1e9:.1f} GB "
            f"of cache, over the {max_cache_bytes / 1e9:.1f} GB bound; use --downscale"
        )


def read_blender_split(
    folder: str | Path, split: str, downscale: int = 1, max_cache_bytes: int = MAX_CACHE_BYTES
) -> Views:
    """Read one split of a Blender-format scene.

    Args:
        folder: the scene folder holding ``transforms_<split>.json``.
        split: "train", "val" or "test".
        downscale: integer factor (1 = full size); focal and centre scale with it.
        max_cache_bytes: refuse splits whose uint8 images exceed this.

    Raises:
        RbfieldError: missing folder/split/frames, bad matrices, mixed sizes.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RbfieldError(f"{folder}: no such scene folder")
    json_path = folder / f"transforms_{split}.json"
    if not json_path.exists():
        raise RbfieldError(f"{folder}: missing split {split!r} (no transforms_{split}.json)")
    meta = _read_json(json_path)
    if "camera_angle_x" not in meta:
        raise RbfieldError(f"{json_path}: no camera_angle_x")
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise RbfieldError(f"{json_path}: no frames")
    images, poses, intrinsics, names = [], [], [], []
    for number, frame in enumerate(frames):
        where = f"{json_path} frame {number}"
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise RbfieldError(f"{where}: needs file_path and transform_matrix")
        path = _image_path(folder, frame["file_path"], json_path)
        if number == 0:
            with open_image(path) as first:
                _check_downscale(first.width, first.height, downscale, path)
                _check_cache(len(frames), first.width, first.height, downscale, max_cache_bytes, str(json_path))
        image = _load_rgba(path, downscale)
        height, width = image.shape[:2]
        focal = 0.5 * width / np.tan(0.5 * _field_of_view(meta, json_path))
        images.append(image)
        poses.append(_pose(frame["transform_matrix"], where))
        intrinsics.append([focal, focal, width / 2.0, height / 2.0])
        names.append(Path(frame["file_path"]).stem)
    return _assemble(images, poses, intrinsics, names, str(json_path))


def read_nerfstudio(
    folder: str | Path, split: str, downscale: int = 1, hold_every: int = 8, max_cache_bytes: int = MAX_CACHE_BYTES
) -> Views:
    """Read a nerfstudio ``transforms.json`` (intrinsics shared or per frame).

    ``train`` is every frame except every ``hold_every``-th; ``val`` and
    ``test`` are the held-out frames.
    """
    folder = Path(folder)
    json_path = folder / "transforms.json"
    meta = _read_json(json_path)
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise RbfieldError(f"{json_path}: no frames")
    _check_cache(len(frames), int(meta.get("w", 0)), int(meta.get("h", 0)), downscale, max_cache_bytes, str(json_path))
    held = [i % hold_every == 0 for i in range(len(frames))]
    chosen = [f for f, h in zip(frames, held) if h == (split != "train")]
    images, poses, intrinsics, names = [], [], [], []
    for number, frame in enumerate(chosen):
        where = f"{json_path} frame {number}"
        if "file_path" not in frame or "transform_matrix" not in frame:
            raise RbfieldError(f"{where}: needs file_path and transform_matrix")
        values = {}
        for key in ("fl_x", "fl_y", "cx", "cy", "w", "h"):
            value = frame.get(key, meta.get(key))
            if value is None and key != "fl_y":
                raise RbfieldError(f"{where}: no {key} (per frame or shared)")
            values[key] = value
        values["fl_y"] = values["fl_y"] or values["fl_x"]
        image = _load_rgba(_image_path(folder, frame["file_path"], json_path), downscale)
        scale = image.shape[1] / float(values["w"])
        images.append(image)
        poses.append(_pose(frame["transform_matrix"], where))
        intrinsics.append([values["fl_x"] * scale, values["fl_y"] * scale, values["cx"] * scale, values["cy"] * scale])
        names.append(Path(frame["file_path"]).stem)
    return _assemble(images, poses, intrinsics, names, str(json_path))


def read_split(folder: str | Path, split: str, downscale: int = 1) -> Views:
    """Read a split from a Blender scene, or from a nerfstudio ``transforms.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RbfieldError(f"{folder}: no such scene folder")
    if isinstance(downscale, bool) or not isinstance(downscale, int) or downscale < 1:
        raise RbfieldError(f"--downscale must be a whole number of at least 1, got {downscale!r}")
    if split not in SPLITS:
        raise RbfieldError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not (folder / f"transforms_{split}.json").exists() and (folder / "transforms.json").exists():
        return read_nerfstudio(folder, split, downscale)
    return read_blender_split(folder, split, downscale)
