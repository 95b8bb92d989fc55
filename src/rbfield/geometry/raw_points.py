"""From the points of a file to a clean, oriented point cloud.

:func:`prepare_points` checks the points, merges exact duplicates, removes
outliers (:func:`rbfield.geometry.point_cleaning.outlier_mask`) and measures
the noise. When normals are to be estimated, it fits and orients them
(:mod:`rbfield.geometry.point_normals`), then turns those a flood fill of the
free space around the points says point in
(:mod:`rbfield.geometry.flood_orientation`). Noisy points (above SMOOTHING_NOISE)
are then denoised: moved onto quadrics fitted to their neighbourhoods, at the
widest of SMOOTHING_SCALES that fits about as well as the narrowest
(:func:`rbfield.geometry.point_cleaning.project_to_quadrics_adaptive`), the
noise measured again after each round, SMOOTHING_MIN_ROUNDS to
SMOOTHING_ROUNDS rounds. The fit and the normals both get the denoised points:
on bunny points with noise of 0.25 % of the diagonal two rounds bring their
mean distance to the true surface from 0.20 % to 0.07 % of the diagonal
(docs/shapes.md, "Raw scans").
What it did is returned as a :class:`Preparation` and said in ShapeWarnings
with counts.

``normals`` chooses where the normals come from: ``"auto"`` (the file's, if it
has them, else estimated), ``"given"`` (the file's; an error without them) or
``"estimate"`` (estimated even if the file has some).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

from rbfield.errors import RbfieldError, ShapeWarning
from rbfield.geometry.flood_orientation import check_normals
from rbfield.geometry.point_cleaning import (
    QuadricScale,
    noise_level,
    outlier_mask,
    project_to_planes,
    project_to_quadrics_adaptive,
)
from rbfield.geometry.point_normals import PLANE_NEIGHBOURS, LocalPlanes, Orientation, local_planes, orient_normals
from rbfield.signals.sdf_defaults import DENOISE_MODES, NORMAL_SOURCES, OUTLIER_MODES, SMOOTHING_NOISE

#: Fewest distinct points a point cloud needs.
MIN_POINTS = 16
#: Points whose spread across their best-fit line is below this share of their extent lie on a line.
LINE_TOLERANCE = 1e-6
#: Neighbours of each plane fit of the copy that normals are estimated from.
SMOOTHING_NEIGHBOURS = 32
#: Neighbourhoods of the denoising quadric fits, narrowest first; each point keeps the widest whose fit's
#: residual is at most SMOOTHING_RESIDUAL_RATIO times the narrowest one's. On points sampled from eight
#: meshes with noise of 0.0025 of the diagonal, this left 4-11 % less distance to the true surface than
#: equal weights on 32 neighbours (docs/shapes.md, "Raw scans").
SMOOTHING_SCALES = (QuadricScale(32, width=0.8), QuadricScale(64, width=0.5))
SMOOTHING_RESIDUAL_RATIO = 1.5
#: Most rounds of denoising (each followed by a new noise estimate)...
SMOOTHING_ROUNDS = 3
#: ...and fewest, once the noise calls for any. A second round took noisy bunny points from 0.076 to 0.068 %
#: of the diagonal from the true surface (fandisk 0.080 to 0.074) and neurbf's mesh from a Chamfer-L1 of
#: 0.144 to 0.140 % (docs/shapes.md, "Raw scans").
SMOOTHING_MIN_ROUNDS = 2


@dataclass
class Preparation:
    """What :func:`prepare_points` did.

    Attributes:
        points_read: points in the file.
        duplicates: exact duplicates merged.
        outliers: outliers removed.
        noise: noise level of the points read, a share of the bounding box's diagonal (:func:`noise_level`).
        smoothing_rounds: rounds of denoising (projection onto local quadrics).
        noise_after: noise level of the points returned (after denoising).
        normals: "given" or "estimated".
        pieces: connected pieces the estimated normals were oriented in (0 when given).
        turned_by_flood: estimated normals turned because a flood fill of free space said they pointed in
            (0 when given, or when the flood fill was not sealed).
    """

    points_read: int
    duplicates: int
    outliers: int
    noise: float
    smoothing_rounds: int
    noise_after: float
    normals: str
    pieces: int
    turned_by_flood: int

    def to_dict(self) -> dict:
        return asdict(self)


class PreparedPoints(NamedTuple):
    """What :func:`prepare_points` returns (M <= N points)."""

    #: (M, 3) the cleaned points, denoised when they were noisy (input units).
    points: np.ndarray
    #: (M, 3) unit outward normals.
    normals: np.ndarray
    #: What was done.
    preparation: Preparation
    #: (M, 3) the same points before denoising moved them; None when they were not moved.
    read_points: np.ndarray | None


def check_spread(points: np.ndarray, name: str) -> None:
    """Refuse points that all lie on one line (or one point). A flat patch is accepted: an open,
    flat scan is legitimate data."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if not singular[0] > 0:
        raise RbfieldError(f"{name}: all points coincide; nothing to fit")
    if singular[1] <= LINE_TOLERANCE * singular[0]:
        raise RbfieldError(f"{name}: all points lie on one line; a surface needs points spread in two directions")


def prepare_points(
    points: np.ndarray,
    normals: np.ndarray | None,
    name: str,
    source: str = "auto",
    outliers: str = "remove",
    denoise: str = "auto",
) -> PreparedPoints:
    """Clean, oriented points from a file's (N, 3) points and its (N, 3) normals or None.

    Args:
        points: (N, 3) finite coordinates (input units); normals: (N, 3) unit normals or None;
        name: the file, for messages; source: one of NORMAL_SOURCES; outliers: one of OUTLIER_MODES
            ("keep" skips the outlier removal); denoise: one of DENOISE_MODES ("off" returns noisy points
            as read).

    Returns:
        :class:`PreparedPoints`.

    Raises:
        RbfieldError: normals "given" but absent; fewer than MIN_POINTS distinct points; points on a line.
    """
    if source not in NORMAL_SOURCES:
        raise RbfieldError(f"normals: choose one of {', '.join(NORMAL_SOURCES)}, not {source!r}")
    if outliers not in OUTLIER_MODES:
        raise RbfieldError(f"outliers: choose one of {', '.join(OUTLIER_MODES)}, not {outliers!r}")
    if denoise not in DENOISE_MODES:
        raise RbfieldError(f"denoise: choose one of {', '.join(DENOISE_MODES)}, not {denoise!r}")
    if normals is None and source == "given":
        raise RbfieldError(f"{name}: the file has no normals; use --normals auto or estimate to estimate them")
    if source == "estimate":
        normals = None
    read = len(points)
    keep = np.sort(np.unique(points, axis=0, return_index=True)[1])
    points, normals = points[keep], (None if normals is None else normals[keep])
    if len(points) < MIN_POINTS:
        raise RbfieldError(f"{name}: only {len(points)} distinct points; a point cloud needs at least {MIN_POINTS}")
    check_spread(points, name)
    if read > len(points):
        _warn(f"{name}: merged {read - len(points)} duplicate points (same coordinates)")

    tree = cKDTree(points)
    isolated = outlier_mask(points, tree=tree) if outliers == "remove" else np.zeros(len(points), bool)
    if isolated.any():
        _warn(f"{name}: removed {int(isolated.sum())} outlier points of {len(points)} (isolated from the surface)")
        points, normals = points[~isolated], (None if normals is None else normals[~isolated])
        tree = cKDTree(points)
    planes = local_planes(points, PLANE_NEIGHBOURS, tree)
    noise = noise_after = noise_level(planes, points)
    estimated, pieces, turned, rounds, read_points = normals is None, 0, 0, 0, points
    if estimated:
        orientation = estimated_normals(points, tree, planes)
        pieces = int(orientation.pieces.max()) + 1
        normals, turned = check_normals(points, orientation.normals, tree)
        flat = f", {orientation.flat_pieces} of them flat (turned to face +z)" if orientation.flat_pieces else ""
        flood = f"; {turned} turned where the free space around the points says they pointed in" if turned else ""
        reason = "the point cloud has no normals; estimating" if source == "auto" else "estimating"
        _warn(
            f"{name}: {reason} them from {PLANE_NEIGHBOURS} neighbours, oriented consistently over "
            f"{pieces} connected piece(s){flat}{flood}"
        )
    if denoise == "auto" and noise > SMOOTHING_NOISE:
        points, fitted_normals, rounds, noise_after = _denoised(points, normals, tree)
        normals = fitted_normals if estimated else normals
    if noise > SMOOTHING_NOISE:
        smoothing = (
            f"; moved onto quadrics fitted to {SMOOTHING_SCALES[0].neighbours}-{SMOOTHING_SCALES[-1].neighbours} "
            f"neighbours in {rounds} round(s), "
            f"which left {noise_after:.2%}"
            if rounds
            else " (kept as read: --denoise off)"
        )
        _warn(f"{name}: noisy points: noise about {noise:.2%} of the bounding box's diagonal{smoothing}")
    preparation = Preparation(
        read,
        read - len(keep),
        int(isolated.sum()),
        noise,
        rounds,
        noise_after,
        "estimated" if estimated else "given",
        pieces,
        turned,
    )
    return PreparedPoints(points, normals, preparation, read_points if rounds else None)


def estimated_normals(points: np.ndarray, tree: cKDTree, planes: LocalPlanes) -> Orientation:
    """Consistently oriented normals of (N, 3) points whose ``planes`` are fitted to PLANE_NEIGHBOURS.

    On noisy points (above SMOOTHING_NOISE) the normals are fitted to a copy of the points projected onto
    their local planes of SMOOTHING_NEIGHBOURS, the noise measured again after each round, at most
    SMOOTHING_ROUNDS rounds: the projection shrinks curved parts, but its normals orient better (CGAL's
    noisy sphere: 100 % outward against 93.9 %)."""
    smoothed, rounds = points, 0
    while noise_level(planes, smoothed) > SMOOTHING_NOISE and rounds < SMOOTHING_ROUNDS:
        smoothed = project_to_planes(smoothed, local_planes(smoothed, SMOOTHING_NEIGHBOURS, tree))
        tree = cKDTree(smoothed)
        planes, rounds = local_planes(smoothed, PLANE_NEIGHBOURS, tree), rounds + 1
    return orient_normals(smoothed, planes.normals, planes.spacing, tree=tree)


def _denoised(points: np.ndarray, normals: np.ndarray, tree: cKDTree) -> tuple[np.ndarray, np.ndarray, int, float]:
    """(N, 3) noisy points moved onto local quadrics (:func:`project_to_quadrics_adaptive`), their (N, 3)
    quadric normals, the rounds run and the noise left: SMOOTHING_MIN_ROUNDS rounds, then more while the
    noise measured after a round is above SMOOTHING_NOISE, at most SMOOTHING_ROUNDS."""
    for rounds in range(1, SMOOTHING_ROUNDS + 1):
        points, normals, _ = project_to_quadrics_adaptive(
            points, normals, SMOOTHING_SCALES, SMOOTHING_RESIDUAL_RATIO, tree
        )
        tree = cKDTree(points)
        noise_after = noise_level(local_planes(points, PLANE_NEIGHBOURS, tree), points)
        if rounds >= SMOOTHING_MIN_ROUNDS and noise_after <= SMOOTHING_NOISE:
            break
    return points, normals, rounds, noise_after


def _warn(message: str) -> None:
    warnings.warn(message, ShapeWarning, stacklevel=4)
