"""Scene reading (Blender and nerfstudio formats), rays against the real geometry, bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial import cKDTree

from rbfield.errors import RbfieldError
from rbfield.scenes.dataset import read_split
from rbfield.scenes.rays import camera_rays, image_rays, ray_box
from shared_data import SHARED_DATA, requires

DATA = SHARED_DATA
SCENE = DATA / "nerf" / "bunny_coffee"
pytestmark = requires("nerf", "bunny_coffee")


def read_off(path: Path) -> np.ndarray:
    """Vertices (V, 3) of an OFF mesh."""
    tokens = path.read_text().split()
    count = int(tokens[1])
    return np.asarray(tokens[4 : 4 + 3 * count], dtype=np.float64).reshape(count, 3)


@pytest.fixture(scope="module")
def test_views():
    return read_split(SCENE, "test")


@pytest.fixture(scope="module")
def bunny_vertices() -> np.ndarray:
    """Source-scan vertices mapped into scene coordinates."""
    matrix = np.asarray(json.loads((SCENE / "normalization.json").read_text())["source_to_scene"])
    vertices = read_off(DATA / "meshes" / "bunny00.off")
    return vertices @ matrix[:3, :3].T + matrix[:3, 3]


def test_reads_blender_split(test_views):
    assert test_views.count == 50 and (test_views.height, test_views.width) == (200, 200)
    meta = json.loads((SCENE / "transforms_test.json").read_text())
    focal = 0.5 * 200 / math.tan(0.5 * meta["camera_angle_x"])
    assert torch.allclose(test_views.intrinsics[0], torch.tensor([focal, focal, 100.0, 100.0]))
    assert torch.allclose(test_views.poses[3], torch.tensor(meta["frames"][3]["transform_matrix"]), atol=1e-6)
    rgb = test_views.rgb_on_white(0)
    alpha = test_views.alpha(0)
    assert rgb.shape == (200, 200, 3)
    assert torch.all(rgb[alpha == 0] == 1.0)  # background composited on white
    assert 0.02 < float((alpha > 0.5).float().mean()) < 0.9


def test_downscale_scales_intrinsics():
    small = read_split(SCENE, "val", downscale=4)
    full = read_split(SCENE, "val")
    assert (small.height, small.width) == (50, 50)
    assert torch.allclose(small.intrinsics, full.intrinsics / 4)
    # A box downscale keeps the mean colour on white.
    assert abs(float(small.rgb_on_white(0).mean() - full.rgb_on_white(0).mean())) < 0.01


def test_rays_through_foreground_pixels_hit_the_scan(test_views, bunny_vertices):
    """The depth along a foreground pixel's ray lands on the source scan; background rays miss it."""
    tree = cKDTree(bunny_vertices)
    reference = np.load(SCENE / "test" / f"{test_views.names[0]}_depth.npy")
    origins, directions = image_rays(test_views.poses[0], test_views.intrinsics[0], 200, 200)
    forward = -test_views.poses[0][:3, 2]
    alpha = test_views.alpha(0).reshape(-1)
    depth = torch.from_numpy(reference).reshape(-1)
    hit = (alpha > 0.99) & (depth > 0)
    t = depth[hit] / (directions[hit] @ forward)  # z-depth -> distance along the unit ray
    points = origins[hit] + directions[hit] * t[:, None]
    distance, _ = tree.query(points.numpy())
    assert np.median(distance) < 0.01 and np.quantile(distance, 0.95) < 0.03
    # Background rays pass the object by: the closest approach to any vertex is not small.
    miss = torch.nonzero(alpha == 0)[:, 0][::50]
    samples = origins[miss, None, :] + directions[miss, None, :] * torch.linspace(2.0, 6.0, 400)[None, :, None]
    closest, _ = tree.query(samples.reshape(-1, 3).numpy())
    assert closest.reshape(len(miss), -1).min(1).min() > 0.005


def test_projected_scan_lands_on_alpha(test_views, bunny_vertices):
    pose = test_views.poses[7].double().numpy()
    fx, fy, cx, cy = test_views.intrinsics[7].tolist()
    camera = (bunny_vertices - pose[:3, 3]) @ pose[:3, :3]  # world -> camera (OpenGL)
    u = fx * camera[:, 0] / -camera[:, 2] + cx
    v = -fy * camera[:, 1] / -camera[:, 2] + cy
    alpha = test_views.alpha(7).numpy()
    inside = alpha[np.clip(v.astype(int), 0, 199), np.clip(u.astype(int), 0, 199)]
    assert np.mean(inside > 0) > 0.99


def test_camera_rays_and_box():
    pose = torch.eye(4)
    pose[2, 3] = 4.0
    origins, directions = camera_rays(
        pose[None], torch.tensor([[100.0, 100.0, 50.0, 50.0]]), torch.tensor([50.0]), torch.tensor([50.0])
    )
    assert torch.allclose(directions, torch.tensor([[0.0, 0.0, -1.0]]))
    near, far = ray_box(origins, directions, -torch.ones(3), torch.ones(3))
    assert torch.allclose(near, torch.tensor([3.0])) and torch.allclose(far, torch.tensor([5.0]))
    near, far = ray_box(torch.tensor([[5.0, 5.0, 4.0]]), directions, -torch.ones(3), torch.ones(3))
    assert far <= near  # misses


def make_scene(tmp_path: Path, n: int = 3, sizes=None) -> Path:
    """A tiny copy of bunny_coffee's first frames (outside the repo)."""
    folder = tmp_path / "scene"
    (folder / "train").mkdir(parents=True)
    meta = json.loads((SCENE / "transforms_train.json").read_text())
    meta["frames"] = meta["frames"][:n]
    for i, frame in enumerate(meta["frames"]):
        source = SCENE / (frame["file_path"] + ".png")
        target = folder / (frame["file_path"] + ".png")
        if sizes:
            Image.open(source).resize(sizes[i]).save(target)
        else:
            shutil.copy(source, target)
    (folder / "transforms_train.json").write_text(json.dumps(meta))
    return folder


def rewrite(folder: Path, change) -> None:
    path = folder / "transforms_train.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_missing_frame_image(tmp_path):
    folder = make_scene(tmp_path)
    (folder / "train" / "r_1.png").unlink()
    with pytest.raises(RbfieldError, match="r_1.*not found"):
        read_split(folder, "train")


def test_wrong_matrix_shape(tmp_path):
    folder = make_scene(tmp_path)
    rewrite(folder, lambda m: m["frames"][1].update(transform_matrix=[[1, 0, 0], [0, 1, 0]]))
    with pytest.raises(RbfieldError, match="4x4"):
        read_split(folder, "train")


def test_mixed_image_sizes(tmp_path):
    folder = make_scene(tmp_path, sizes=[(200, 200), (100, 100), (200, 200)])
    with pytest.raises(RbfieldError, match="mixed sizes"):
        read_split(folder, "train")


def test_missing_split_and_folder(tmp_path):
    folder = make_scene(tmp_path)
    with pytest.raises(RbfieldError, match="missing split 'test'"):
        read_split(folder, "test")
    with pytest.raises(RbfieldError, match="no such scene folder"):
        read_split(tmp_path / "nowhere", "train")


def test_frames_missing_or_empty(tmp_path):
    folder = make_scene(tmp_path)
    rewrite(folder, lambda m: m.update(frames=[]))
    with pytest.raises(RbfieldError, match="no frames"):
        read_split(folder, "train")


def test_reads_nerfstudio_transforms(tmp_path):
    folder = make_scene(tmp_path, n=9)
    meta = json.loads((folder / "transforms_train.json").read_text())
    focal = 0.5 * 200 / math.tan(0.5 * meta["camera_angle_x"])
    frames = [{"file_path": f["file_path"] + ".png", "transform_matrix": f["transform_matrix"]} for f in meta["frames"]]
    frames[2]["fl_x"] = 2 * focal  # per-frame intrinsics override the shared ones
    (folder / "transforms.json").write_text(
        json.dumps({"fl_x": focal, "fl_y": focal, "cx": 100, "cy": 100, "w": 200, "h": 200, "frames": frames})
    )
    (folder / "transforms_train.json").unlink()
    train, test = read_split(folder, "train"), read_split(folder, "test")
    assert (train.count, test.count) == (7, 2)
    assert torch.isclose(train.intrinsics[1, 0], torch.tensor(2 * focal))
    assert torch.allclose(train.intrinsics[0], torch.tensor([focal, focal, 100.0, 100.0]))


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 4], [0, 0, 0, 1]], "rows of equal length"),
        ([[0, 0, 0, 0]] * 4, "singular"),
    ],
    ids=["ragged", "all-zero"],
)
def test_unusable_matrices_are_refused(tmp_path, matrix, message):
    folder = make_scene(tmp_path)
    rewrite(folder, lambda m: m["frames"][0].update(transform_matrix=matrix))
    with pytest.raises(RbfieldError, match=message):
        read_split(folder, "train")


@pytest.mark.parametrize("angle", [0, -0.5, 3.5, "wide"])
def test_impossible_fields_of_view_are_refused(tmp_path, angle):
    folder = make_scene(tmp_path)
    rewrite(folder, lambda m: m.update(camera_angle_x=angle))
    with pytest.raises(RbfieldError, match="camera_angle_x must be"):
        read_split(folder, "train")


@pytest.mark.parametrize("downscale", [0, -2])
def test_a_downscale_below_one_is_refused(downscale):
    with pytest.raises(RbfieldError, match="--downscale must be a whole number of at least 1"):
        read_split(SCENE, "train", downscale)
