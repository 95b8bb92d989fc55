"""Signed distance fields as signals: from a mesh, or from an oriented point cloud.

Everything here lives in the field's domain [0, 1]^3: the caller normalizes
the shape first (:class:`rbfield.geometry.shapes_io.Normalization`), so
distances are in unit-cube units. Signs: negative inside.

* :class:`MeshSDF` -- ground truth by generalised (fast) winding numbers
  (point-cloud-utils), so open scans work. Training points come from a pool
  of surface : surface jittered by +-0.01 per axis : uniform = 4 : 3 : 1
  (NeuRBF), redrawn every ``refresh_every`` steps. Loss: MAPE
  ``|p - g| / (|g| + 0.01)``, plus 1 - cos between the field's gradient and
  the face normal at GRADIENT_POINTS surface samples per step.
* :class:`PointCloudSDF` -- no distances are known; the oriented points are
  read as surfels (:mod:`rbfield.geometry.surfel_distance`), whose signed
  distance gives the targets; farther than NEAR_SPACINGS sample spacings from
  the samples, the sign comes from a flood fill of free space when that is
  sealed (:mod:`rbfield.geometry.enclosure`), so a patch of wrong normals
  cannot turn the space around it inside out; with estimated normals, the near targets are then
  unsigned. The pool takes the input points as its surface
  part (target 0) and jitters them for the near part. The loss is MAPE, as
  for a mesh, plus three terms on the field's gradient
  (:func:`gradient_terms`): gradients equal to the normals at the input
  points, an eikonal term, and a penalty on values near zero away from the
  surface.

The gradient terms take the field's gradient one of two ways, chosen by a
signal's ``gradient_step``: exactly by autograd (0, a double backward; a
mesh's default), or by central differences (:func:`difference_probes`,
:func:`difference_gradients`) whose probes share the step's one field call
(DIFFERENCE_STEP; a point cloud's default, and faster).
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np
import torch

from rbfield.geometry.enclosure import UNKNOWN, Enclosure
from rbfield.geometry.mesh_pieces import face_pieces
from rbfield.geometry.shape_metrics import sample_surface, sign_iou
from rbfield.geometry.shapes_io import Mesh, PointCloud, ShapeWarning
from rbfield.geometry.surfel_distance import SurfelDistance
from rbfield.geometry.triangles import face_areas, face_normals
from rbfield.ops import tree_query
from rbfield.signals.sdf_defaults import DEFAULT_BATCH, DIFFERENCE_STEP
from rbfield.spec import SignalSpec

#: Sampling ratio surface : jittered : uniform.
SAMPLE_RATIO = (4, 3, 1)
#: Jitter of near-surface samples, uniform per axis in [-JITTER, JITTER].
JITTER = 0.01
#: MAPE's epsilon: |p - g| / (|g| + MAPE_EPS).
MAPE_EPS = 0.01
#: Smallest RBF scale for the k-means init (kernel std >= half of this).
RBF_SPACING = 0.01
#: Points of the quick in-training IoU check (uniform + near-surface).
QUICK_EVAL_POINTS = 2**14
#: Query points per field call when evaluating without gradients.
EVAL_CHUNK = 2**16
#: Surface points per step (for a point cloud, with as many off-surface pool
#: points) that carry the gradient terms. By central differences each costs
#: six extra points in the step's field call (:func:`difference_probes`).
GRADIENT_POINTS = 128
#: Weight of a mesh fit's normal term beside MAPE (weight 1). On the Stanford
#: dragon, neurbf's NAE was 5.93 deg without it, 5.92 / 5.71 / 5.73 with
#: weights 0.1 / 1 / 5; it lowered the NAE on all six scans measured, and did
#: more than the same time spent on extra steps (BENCHMARKS.md, "Shapes").
MESH_NORMAL_WEIGHT = 1.0
#: Distance (domain units) from a face's centroid, along and against its
#: normal, at which :func:`outward_faces` reads the inside/outside sign.
ORIENTATION_PROBE = 1e-4
#: A mesh fit warns when more than this share of the mesh's area is wound inside out.
INWARD_WARNING_SHARE = 0.01
#: Weights of a point-cloud fit's gradient terms beside MAPE (weight 1).
NORMAL_WEIGHT, EIKONAL_WEIGHT, SPURIOUS_WEIGHT = 0.1, 0.05, 0.1
#: The normal term's weight when the normals were estimated (their signs are wrong in patches where
#: two sheets lie within a sample spacing). Together with unsigned near targets
#: (:meth:`PointCloudSDF.targets`), on 20,000 camel points with noise of 0.25 % of the diagonal:
#: Chamfer-L1 0.148 % of the diagonal at 0.03, 0.149 at 0.01, 0.152 at 0.1 and 0.843 at 0 (no sign
#: near the surface at all), with the near targets unsigned within 1.5 spacings; with signed near
#: targets 0.03 did not help (0.157 against 0.156).
ESTIMATED_NORMAL_WEIGHT = 0.03
#: Farther than this from a point cloud's samples (in sample spacings: median distances to the 4th
#: nearest one), a target's sign comes from the flood fill where it decides one, not from the few
#: nearest normals.
NEAR_SPACINGS = 1.5
#: The same with estimated normals, where the near targets are unsigned (:meth:`PointCloudSDF.targets`):
#: on 20,000 camel points with noise of 0.25 % of the diagonal, Chamfer-L1 0.136 % of the diagonal at
#: 1 spacing, 0.148 at 1.5 and 0.151 at 2.5 (bunny, fandisk and elephant within 0.0002 of 1.5's).
UNSIGNED_NEAR_SPACINGS = 1.0
#: The spurious-zero penalty is exp(-SPURIOUS_SHARPNESS |f|) (1/domain units),
#: at off-surface points whose target is at least SPURIOUS_DISTANCE away.
SPURIOUS_SHARPNESS, SPURIOUS_DISTANCE = 100.0, 0.02


def spec() -> SignalSpec:
    """SDFs: 3-D in, 1 value out; the "resolution" sizes the grids' finest level."""
    return SignalSpec("sdf", 3, 1, (2048, 2048, 2048))


def winding_sdf(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """Signed distance (P,) from (P, 3) points to a mesh, sign by fast winding numbers."""
    import point_cloud_utils as pcu

    distances, _, _ = pcu.signed_distance_to_mesh(
        np.ascontiguousarray(points, dtype=np.float64),
        np.ascontiguousarray(mesh.vertices, dtype=np.float64),
        np.ascontiguousarray(mesh.faces, dtype=np.int32),
    )
    return np.asarray(distances, dtype=np.float64).reshape(-1)


def outward_faces(mesh: Mesh) -> tuple[np.ndarray, float]:
    """The mesh's (F, 3) faces with every connected piece that is wound inside
    out reversed, and the share of the surface area that was reversed.

    Each face votes, by its area, with the inside/outside signs of
    :func:`winding_sdf` ORIENTATION_PROBE from its centroid: outward if the
    point along its normal is outside and the one against it inside, inward
    if the reverse. A piece is reversed when its inward votes outweigh its
    outward ones. The winding-number signs do not change when every face of a
    piece is reversed, which is what makes them a judge here; a single face
    wound against its neighbours turns the signs around it too, so it cannot
    be told apart and is left as given.
    """
    areas = face_areas(mesh.vertices, mesh.faces)
    normals = face_normals(mesh.vertices, mesh.faces)
    centroids = mesh.vertices[mesh.faces].mean(axis=1)
    ahead, behind = np.split(
        winding_sdf(
            mesh, np.concatenate([centroids + ORIENTATION_PROBE * normals, centroids - ORIENTATION_PROBE * normals])
        ),
        2,
    )
    outward, inward = (ahead > 0) & (behind < 0), (ahead < 0) & (behind > 0)
    piece = face_pieces(len(mesh.vertices), mesh.faces)
    inside_out = (np.bincount(piece, areas * inward) > np.bincount(piece, areas * outward))[piece]
    faces = np.where(inside_out[:, None], mesh.faces[:, ::-1], mesh.faces)
    return faces, float(areas[inside_out].sum() / max(areas.sum(), 1e-300))


@torch.no_grad()
def evaluate_sdf(field: torch.nn.Module, points: np.ndarray | torch.Tensor, chunk: int = EVAL_CHUNK) -> np.ndarray:
    """The field at (P, 3) domain points, ``chunk`` at a time (on the field's device) -> (P,) float64."""
    points = torch.as_tensor(np.asarray(points, dtype=np.float32))
    device = next((p.device for p in field.parameters()), points.device)
    parts = [field(points[s : s + chunk].to(device)).reshape(-1).cpu() for s in range(0, len(points), chunk)]
    return torch.cat(parts).double().numpy() if parts else np.zeros(0)


def iou_points(surface: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n/2 uniform points in [0, 1]^3 and n/2 surface points jittered by +-JITTER: (n, 3)."""
    picks = surface[rng.integers(len(surface), size=n - n // 2)]
    near = picks + rng.uniform(-JITTER, JITTER, size=picks.shape)
    return np.concatenate([rng.random((n // 2, 3)), near])


def iou_point_weights(points: np.ndarray, surface: np.ndarray) -> np.ndarray:
    """Volume weights (P,) of points drawn by :func:`iou_points` from ``surface``.

    The points come from a mixture: a uniform half (density 1 on [0, 1]^3) and
    a near half, a ``surface`` row picked uniformly plus a uniform offset in a
    cube of side 2 JITTER, whose density is exactly
    ``q(x) = #{s : |x - s|_inf <= JITTER} / (len(surface) (2 JITTER)^3)``.
    Each point's weight is 1 / p(x), p the mixture's density (multiple
    importance sampling, balance heuristic), so that ``mean(w * [x in R])``
    estimates the volume of any region R of [0, 1]^3 in domain units, without
    bias, and with the near half resolving thin regions around the surface.
    """
    from scipy.spatial import cKDTree

    n_uniform = len(points) // 2
    in_cube = np.all((points >= 0.0) & (points <= 1.0), axis=1)
    counts = tree_query(cKDTree(surface).query_ball_point, points, r=JITTER, p=np.inf, return_length=True)
    near_density = counts / (len(surface) * (2 * JITTER) ** 3)
    density = (n_uniform * in_cube + (len(points) - n_uniform) * near_density) / len(points)
    return 1.0 / density


def mape(prediction: torch.Tensor, target: torch.Tensor, sign_known: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of |p - g| / (|g| + 0.01) over the batch; where ``sign_known`` (a bool tensor shaped like
    the targets; None: everywhere) is False, of ||p| - |g|| / (|g| + 0.01) instead."""
    if sign_known is not None:
        prediction = torch.where(sign_known, prediction, prediction.abs())
        target = torch.where(sign_known, target, target.abs())
    return ((prediction - target).abs() / (target.abs() + MAPE_EPS)).mean()


def difference_probes(points: torch.Tensor, step: float = DIFFERENCE_STEP) -> torch.Tensor:
    """(G, 3) points -> (6 G, 3) probes for :func:`difference_gradients`: each
    point moved by +step along x, y, z, then by -step along x, y, z."""
    offsets = step * torch.eye(3, dtype=points.dtype, device=points.device)
    return torch.cat([points[:, None, :] + offsets, points[:, None, :] - offsets], dim=1).reshape(-1, 3)


def difference_gradients(probe_values: torch.Tensor, step: float = DIFFERENCE_STEP) -> torch.Tensor:
    """The field's values at :func:`difference_probes` ((6 G,) or (6 G, 1)) ->
    (G, 3) central-difference gradients (1 / domain units)."""
    ahead, behind = probe_values.reshape(-1, 2, 3).unbind(dim=1)
    return (ahead - behind) / (2.0 * step)


def gradient_terms(
    gradients: torch.Tensor,
    surface_normals: torch.Tensor,
    off_values: torch.Tensor,
    off_targets: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Terms on the field's gradient (as in SIREN, Sitzmann et al. 2020).

    Args:
        gradients: (G + H, 3) the field's gradients at G surface points, then
            at H points off the surface (H may be 0).
        surface_normals: (G, 3) unit normals at the surface points.
        off_values: (H,) the field's values at the off points; off_targets:
            (H,) their signed distances (domain units).

    Returns:
        scalars ``normal`` (mean 1 - cos(grad f, n) at the surface points),
        ``eikonal`` (mean (|grad f| - 1)^2 at all G + H points) and
        ``spurious`` (mean exp(-SPURIOUS_SHARPNESS |f|) at the off points whose
        |target| >= SPURIOUS_DISTANCE; 0 if there are none).
    """
    n_surface = len(surface_normals)
    cosine = torch.nn.functional.cosine_similarity(gradients[:n_surface], surface_normals, dim=1)
    far_values = off_values.reshape(-1)[off_targets.reshape(-1).abs() >= SPURIOUS_DISTANCE]
    return {
        "normal": (1.0 - cosine).mean(),
        "eikonal": ((gradients.norm(dim=1) - 1.0) ** 2).mean(),
        "spurious": (
            torch.exp(-SPURIOUS_SHARPNESS * far_values.abs()).mean() if len(far_values) else gradients.sum() * 0.0
        ),
    }


class OrientedBatch(NamedTuple):
    """One step's inputs for an SDF fit."""

    #: (B, 3) pool points, surface : jittered : uniform = 4 : 3 : 1, in that order.
    points: torch.Tensor
    #: (GRADIENT_POINTS, 3) surface points and their unit normals, for the gradient terms.
    oriented_points: torch.Tensor
    oriented_normals: torch.Tensor
    #: (B, 1) bool: whether the loss trusts the sign of each pool point's target; None: every one.
    sign_known: torch.Tensor | None = None


class PooledSDF(ABC):
    """An SDF signal trained on a pool of points with known (or estimated)
    signed distances, for :func:`rbfield.fit`. Subclasses say how to sample the
    surface (:meth:`surface_samples`), what the signed distance is
    (:meth:`signed_distance`) and how the loss weighs :func:`gradient_terms`
    beside MAPE (the class attributes below).

    Args:
        name: shown in reports.
        batch_size: points per step.
        pool_size: presampled points (split 4 : 3 : 1).
        refresh_every: steps between pool redraws (0: never).
        seed: seeds the pools.
    """

    #: Name of the quick in-training metric: the insides' volume IoU against
    #: signed_distance (the strict one; the outsides' IoU saturates early).
    quick_metric = "iou_inside"
    #: Weights of :func:`gradient_terms` beside MAPE (weight 1).
    normal_weight = eikonal_weight = spurious_weight = 0.0
    #: Off-surface points per step (the batch's last ones) in the gradient terms.
    off_gradient_points = 0
    #: Central-difference step (domain units) of the gradient terms; 0 takes
    #: the exact gradient by a double backward instead.
    gradient_step = DIFFERENCE_STEP

    def __init__(self, name: str, batch_size: int, pool_size: int, refresh_every: int, seed: int):
        self.name = name
        self.batch_size = batch_size
        self.pool_size = pool_size
        self.refresh_every = refresh_every
        self.rng = np.random.default_rng(seed)
        self._draw_pool()
        surface = self.pool_points[0].numpy().astype(np.float64)
        quick = iou_points(surface, QUICK_EVAL_POINTS, np.random.default_rng(seed + 1))
        self.quick_points, self.quick_sdf = quick, self.signed_distance(quick)
        self.quick_weights = iou_point_weights(quick, surface)

    @abstractmethod
    def surface_samples(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, 3) points on the surface and their (n, 3) outward unit normals."""

    @abstractmethod
    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """(P, 3) points -> (P,) signed distances, negative inside."""

    def targets(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The training targets of (P, 3) points: their (P,) :meth:`signed_distance`, and (P,) bool, whether
        the loss may trust each one's sign (where not, it fits the field's magnitude to the distance's).
        Here every sign is trusted."""
        return self.signed_distance(points), np.ones(len(points), bool)

    def spec(self) -> SignalSpec:
        return spec()

    def _draw_pool(self) -> None:
        """Redraw the pool: surface, jittered and uniform points with their SDF."""
        total = sum(SAMPLE_RATIO)
        n_surface, n_near, n_uniform = (self.pool_size * r // total for r in SAMPLE_RATIO)
        surface, normals = self.surface_samples(n_surface + n_near, int(self.rng.integers(2**31)))
        near = surface[n_surface:] + self.rng.uniform(-JITTER, JITTER, size=(n_near, 3))
        uniform = self.rng.random((n_uniform, 3))
        off_sdf, off_known = self.targets(np.concatenate([near, uniform]))
        off_known = torch.from_numpy(off_known[:, None])
        self.pool_points = [torch.from_numpy(p.astype(np.float32)) for p in (surface[:n_surface], near, uniform)]
        self.pool_sign_known = [torch.ones(n_surface, 1, dtype=torch.bool), off_known[:n_near], off_known[n_near:]]
        self.pool_normals = torch.from_numpy(normals[:n_surface].astype(np.float32))
        self.pool_sdf = [
            torch.zeros(n_surface, 1),
            torch.from_numpy(off_sdf[:n_near, None].astype(np.float32)),
            torch.from_numpy(off_sdf[n_near:, None].astype(np.float32)),
        ]

    # --- what the trainer calls -------------------------------------------------
    def oriented_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the gradient terms' surface points are drawn from: (S, 3) points
        and (S, 3) unit normals. Here the pool's surface part."""
        return self.pool_points[0], self.pool_normals

    def batch(self, step: int, generator: torch.Generator) -> tuple[OrientedBatch, torch.Tensor]:
        """(an :class:`OrientedBatch`, pool targets (B, 1)); the pool points are
        drawn 4 : 3 : 1, the GRADIENT_POINTS oriented ones uniformly from
        :meth:`oriented_points`."""
        total = sum(SAMPLE_RATIO)
        points, targets, known = [], [], []
        for ratio, pool, sdf, sign_known in zip(SAMPLE_RATIO, self.pool_points, self.pool_sdf, self.pool_sign_known):
            index = torch.randint(len(pool), (self.batch_size * ratio // total,), generator=generator)
            points.append(pool[index])
            targets.append(sdf[index])
            known.append(sign_known[index])
        known = torch.cat(known)
        oriented, normals = self.oriented_points()
        picks = torch.randint(len(oriented), (GRADIENT_POINTS,), generator=generator)
        batch = OrientedBatch(torch.cat(points), oriented[picks], normals[picks], None if known.all() else known)
        return batch, torch.cat(targets)

    def training_loss(self, field: torch.nn.Module, inputs: OrientedBatch, targets: torch.Tensor) -> torch.Tensor:
        """MAPE on the pool points (on magnitudes where ``inputs.sign_known`` says so) plus the weighted
        :func:`gradient_terms`."""
        if not (self.normal_weight or self.eikonal_weight or self.spurious_weight):
            return mape(field(inputs.points), targets, inputs.sign_known)
        batch = len(inputs.points)
        n_off = min(self.off_gradient_points, batch)  # the batch's last n_off (uniform) points
        gradient_points = torch.cat([inputs.oriented_points, inputs.points[batch - n_off :]])
        values, gradients = self._values_and_gradients(field, inputs.points, gradient_points)
        terms = gradient_terms(gradients, inputs.oriented_normals, values[batch - n_off :], targets[batch - n_off :])
        return (
            mape(values, targets, inputs.sign_known)
            + self.normal_weight * terms["normal"]
            + self.eikonal_weight * terms["eikonal"]
            + self.spurious_weight * terms["spurious"]
        )

    def _values_and_gradients(
        self, field: torch.nn.Module, points: torch.Tensor, gradient_points: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The field's (B, 1) values at the (B, 3) pool points and its (G, 3)
        gradients at the gradient points: by central differences whose probes
        share the pool points' one field call (first order), or, when
        ``gradient_step`` is 0, exactly by autograd (a double backward)."""
        if self.gradient_step:
            values = field(torch.cat([points, difference_probes(gradient_points, self.gradient_step)]))
            return values[: len(points)], difference_gradients(values[len(points) :], self.gradient_step)
        gradient_points = gradient_points.detach().requires_grad_(True)
        with torch.enable_grad():
            (gradients,) = torch.autograd.grad(field(gradient_points).sum(), gradient_points, create_graph=True)
        return field(points), gradients

    def progress(self, loss: float) -> dict:
        return {}

    def after_step(self, field: torch.nn.Module, step: int) -> None:
        if self.refresh_every and (step + 1) % self.refresh_every == 0:
            self._draw_pool()

    def evaluate(self, field: torch.nn.Module) -> dict:
        """Quick volume IoU of the insides against :meth:`signed_distance` on 2**14 uniform + near-surface points."""
        return {self.quick_metric: sign_iou(evaluate_sdf(field, self.quick_points), self.quick_sdf, self.quick_weights)}

    # --- initialisation -------------------------------------------------------
    def rbf_init_samples(self, n_kernels: int, weight_power: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Pool points (M, 3), weights (1 / (|sdf| + 1e-9)) ** weight_power (M,), the smallest RBF scale.

        The whole pool whatever ``n_kernels``: its size is already bounded.
        """
        points = torch.cat(self.pool_points)
        weights = (1.0 / (torch.cat(self.pool_sdf).reshape(-1).double().abs() + 1e-9)) ** weight_power
        return points, weights.float(), RBF_SPACING


class MeshSDF(PooledSDF):
    """A normalized mesh (inside [0, 1]^3) as an SDF signal: surface samples
    uniform by area, signed distances by fast winding numbers. The loss adds
    MESH_NORMAL_WEIGHT * (1 - cos) between the field's gradient and the face
    normals at GRADIENT_POINTS surface samples per step. Those normals come
    from :func:`outward_faces`, so a mesh, or a piece of one, wound inside out
    does not fight the winding-number signs; a ShapeWarning says so when more
    than INWARD_WARNING_SHARE of the area is turned. Other arguments as
    :class:`PooledSDF`."""

    normal_weight = MESH_NORMAL_WEIGHT
    #: Exact gradients. Against DIFFERENCE_STEP they lowered neurbf's normal
    #: error on fandisk from 2.03 to 1.74 deg (three seeds), below
    #: instant-ngp's; they changed it by -0.07..+0.02 deg on four other scans
    #: and by +0.29 on a thin-walled bust, for 23-43 % more training time
    #: (BENCHMARKS.md, "Shapes").
    gradient_step = 0.0

    def __init__(
        self,
        mesh: Mesh,
        name: str = "mesh",
        batch_size: int = DEFAULT_BATCH,
        pool_size: int = 2**18,
        refresh_every: int = 500,
        seed: int = 0,
    ):
        self.mesh = mesh
        self.sampling_faces, inward_share = outward_faces(mesh)
        if inward_share > INWARD_WARNING_SHARE:
            warnings.warn(
                f"{name}: {inward_share:.1%} of the mesh's area is wound inside out; the fit turns "
                "it outward for its normal term (metrics compare with the faces as given)",
                ShapeWarning,
                stacklevel=2,
            )
        super().__init__(name, batch_size, pool_size, refresh_every, seed)

    def surface_samples(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        return sample_surface(self.mesh.vertices, self.sampling_faces, n, seed)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        return winding_sdf(self.mesh, points)


class PointCloudSDF(PooledSDF):
    """A normalized oriented point cloud as an SDF signal: the input points are
    the surface samples (drawn with replacement) and signed distances are to
    their surfels (:class:`~rbfield.geometry.surfel_distance.SurfelDistance`).
    The loss adds :func:`gradient_terms` to MAPE: on GRADIENT_POINTS input
    points per step and as many off-surface points from the end of the batch.
    The quick metric, ``iou_vs_normals``, is the sign IoU against the surfel
    distance. Other arguments as :class:`PooledSDF`.

    When the normals were estimated (``cloud.normals_estimated``) and the flood fill is sealed, the
    targets within ``near_distance`` of the samples (UNSIGNED_NEAR_SPACINGS, not NEAR_SPACINGS) are
    unsigned (:meth:`targets`) and the normal term weighs ESTIMATED_NORMAL_WEIGHT: there the sign
    comes from the field's continuity with the flood fill's far targets and from the normals as a
    whole, not from the few nearest normals, a patch of which may point the wrong way. Given normals
    keep signed targets everywhere."""

    quick_metric = "iou_vs_normals"
    normal_weight, eikonal_weight, spurious_weight = NORMAL_WEIGHT, EIKONAL_WEIGHT, SPURIOUS_WEIGHT
    off_gradient_points = GRADIENT_POINTS

    def __init__(
        self,
        cloud: PointCloud,
        name: str = "points",
        batch_size: int = DEFAULT_BATCH,
        pool_size: int = 2**18,
        refresh_every: int = 500,
        seed: int = 0,
    ):
        self.cloud = cloud
        self.surfels = SurfelDistance(cloud.points, cloud.normals)
        self.enclosure = Enclosure(self.surfels, seed)
        self.unsigned_near = cloud.normals_estimated and self.enclosure.sealed
        near_spacings = UNSIGNED_NEAR_SPACINGS if self.unsigned_near else NEAR_SPACINGS
        self.near_distance = near_spacings * float(np.median(self.surfels.spacing))
        if cloud.normals_estimated:
            self.normal_weight = ESTIMATED_NORMAL_WEIGHT
        self.input_points = torch.from_numpy(cloud.points.astype(np.float32))
        self.input_normals = torch.from_numpy(cloud.normals.astype(np.float32))
        super().__init__(name, batch_size, pool_size, refresh_every, seed)

    def oriented_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The input points and their normals, each as likely as any other."""
        return self.input_points, self.input_normals

    def surface_samples(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        picks = np.random.default_rng(seed).integers(len(self.surfels.points), size=n)
        return self.surfels.points[picks], self.surfels.normals[picks]

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """The surfels' signed distance; its sign, farther than ``near_distance`` from them, from the
        flood fill (:class:`~rbfield.geometry.enclosure.Enclosure`) where that has one."""
        return self.targets(points)[0]

    def targets(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`signed_distance` and the signs the loss trusts: every one, or, with ``unsigned_near``,
        only those the flood fill decides."""
        distance = self.surfels(points)
        sides = self.enclosure.sides(points)
        flood_decides = (np.abs(distance) > self.near_distance) & (sides != UNKNOWN)
        signed = np.where(flood_decides, sides * np.abs(distance), distance)
        return signed, flood_decides if self.unsigned_near else np.ones(len(points), bool)
