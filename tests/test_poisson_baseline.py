"""Screened Poisson through Open3D: the depth rule, a known sphere, the error without Open3D.

The reconstruction tests run when open3d imports and skip otherwise: the
``poisson`` extra (open3d-cpu) is not part of the ``test`` extra, and its wheel
imports only after ``apt-get install libusb-1.0-0`` (docs/testing.md).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from rbfield.errors import RbfieldError
from rbfield.geometry.poisson_baseline import DEPTH_RANGE, choose_depth, import_open3d, screened_poisson
from rbfield.geometry.shapes_io import load_shape
from shared_data import shared_file


def _open3d_missing() -> str | None:
    try:
        import_open3d()
    except RbfieldError as error:
        return str(error)
    return None


needs_open3d = pytest.mark.skipif(_open3d_missing() is not None, reason=f"open3d does not import: {_open3d_missing()}")


def test_missing_open3d_names_the_extra_and_libusb(monkeypatch):
    monkeypatch.setitem(sys.modules, "open3d", None)  # makes `import open3d` raise ImportError
    with pytest.raises(RbfieldError) as caught:
        screened_poisson(np.random.default_rng(0).random((100, 3)))
    message = str(caught.value)
    assert "pip install 'rbfield[poisson]'" in message and "libusb-1.0-0" in message and "\n" not in message


def test_depth_makes_the_finest_cell_about_the_spacing():
    grid = np.stack(np.meshgrid(np.arange(101), np.arange(101), [0]), -1).reshape(-1, 3) / 100.0
    assert choose_depth(grid, 0.01) == 7  # 1.1 * 1 / 0.01 = 110 cells -> 2^7 = 128
    assert choose_depth(grid, 0.0001) == DEPTH_RANGE[1]
    assert choose_depth(grid, 0.5) == DEPTH_RANGE[0]


@needs_open3d
@pytest.mark.parametrize("estimate", [False, True], ids=["file normals", "open3d normals"])
def test_a_noisy_sphere_comes_back_smoother_than_its_points(estimate):
    # CGAL's sphere_20k_normal.xyz: points of the unit sphere with radial noise (mean |r - 1| 0.032)
    # and noisy normals. Measured: mean |r - 1| of the mesh 0.014, 95th percentile 0.036.
    cloud = load_shape(shared_file("meshes", "sphere_20k_normal.xyz"))
    result = screened_poisson(cloud.measured, cloud.normals, estimate_normals=estimate)  # as read, not denoised
    radial = np.abs(np.linalg.norm(result.vertices, axis=1) - 1)
    assert result.estimated_normals is estimate and result.depth == 7 and result.seconds > 0
    assert radial.mean() < 0.02 and np.percentile(radial, 95) < 0.05
    assert radial.mean() < 0.6 * np.abs(np.linalg.norm(cloud.measured, axis=1) - 1).mean()


@needs_open3d
def test_trimming_removes_the_sparsest_vertices():
    cloud = load_shape(shared_file("meshes", "kitten.xyz"))
    whole = screened_poisson(cloud.points, cloud.normals)
    trimmed = screened_poisson(cloud.points, cloud.normals, trim_quantile=0.05)
    assert 0.9 * len(whole.vertices) < len(trimmed.vertices) < 0.96 * len(whole.vertices)
    assert trimmed.faces.max() < len(trimmed.vertices)
    with pytest.raises(RbfieldError, match="quantile"):
        screened_poisson(cloud.points, cloud.normals, trim_quantile=1.0)
