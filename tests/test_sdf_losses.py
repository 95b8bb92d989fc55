"""The losses of an SDF fit: exact values on an analytic sphere, central
differences against exact gradients, and the oriented samples of a real scan."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from rbfield.geometry.shapes_io import Mesh, ShapeWarning
from rbfield.signals.sdf import (
    DIFFERENCE_STEP,
    EIKONAL_WEIGHT,
    GRADIENT_POINTS,
    MESH_NORMAL_WEIGHT,
    SPURIOUS_DISTANCE,
    SPURIOUS_SHARPNESS,
    SPURIOUS_WEIGHT,
    MeshSDF,
    OrientedBatch,
    PointCloudSDF,
    difference_gradients,
    difference_probes,
    gradient_terms,
    mape,
    winding_sdf,
)
from rbfield.tasks.sdf import load_normalized
from shared_data import shared_file

CENTRE, RADIUS = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64), 0.3


class ScaledSphere(torch.nn.Module):
    """f(x) = scale * (|x - centre| - radius): an exact SDF when scale = 1."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.scale * ((x - CENTRE).norm(dim=1) - RADIUS))[:, None]


def _sphere_points(n: int, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """n points at ``radius`` from the centre, and the outward unit directions (float64)."""
    generator = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=generator, dtype=torch.float64), dim=1)
    return CENTRE + radius * directions, directions


def _terms(field, surface_points, surface_normals, off_points, off_targets):
    """gradient_terms with central-difference gradients, as a fit computes them."""
    gradients = difference_gradients(field(difference_probes(torch.cat([surface_points, off_points]))))
    return gradient_terms(gradients, surface_normals, field(off_points), off_targets)


def test_central_differences_of_a_cubic_are_exact_up_to_their_known_error():
    """For f = x^3 + y^3 + z^3 the central difference along an axis is 3 x^2 + step^2 exactly."""
    points = torch.tensor([[0.2, 0.5, 0.7], [0.9, 0.1, 0.4]], dtype=torch.float64)
    step = 1e-3
    gradients = difference_gradients(difference_probes(points, step).pow(3).sum(dim=1), step)
    assert torch.allclose(gradients, 3 * points**2 + step**2, rtol=0, atol=1e-12)


def test_mape_is_relative_to_the_target():
    prediction, target = torch.tensor([0.02, 0.0]), torch.tensor([0.01, 0.0])
    # |0.02 - 0.01| / (0.01 + 0.01) = 0.5 and 0 / 0.01 = 0.
    assert torch.isclose(mape(prediction, target), torch.tensor(0.25))


def test_mape_compares_magnitudes_where_the_sign_is_not_known():
    prediction, target = torch.tensor([[-0.02], [0.02]]), torch.tensor([[0.01], [0.01]])
    # Known signs: |-0.02 - 0.01| / 0.02 = 1.5 and 0.5; the first unsigned: ||-0.02| - 0.01| / 0.02 = 0.5.
    assert torch.isclose(mape(prediction, target, torch.tensor([[True], [True]])), torch.tensor(1.0))
    assert torch.isclose(mape(prediction, target, torch.tensor([[False], [True]])), torch.tensor(0.5))


def test_gradient_terms_vanish_on_an_exact_sdf():
    points, normals = _sphere_points(64, RADIUS)
    off, _ = _sphere_points(64, RADIUS + 0.1)
    terms = _terms(ScaledSphere(1.0), points, normals, off, torch.full((64,), 0.1, dtype=torch.float64))
    # Central differences at step 5e-4 on a sphere of radius 0.3: |grad| - 1 ~ 1e-6.
    assert terms["normal"].abs() < 1e-9 and terms["eikonal"].abs() < 1e-9
    # Every off point is 0.1 from the surface: exp(-SHARPNESS * 0.1) each.
    assert math.isclose(terms["spurious"].item(), math.exp(-SPURIOUS_SHARPNESS * 0.1), rel_tol=1e-4)


def test_gradient_terms_exact_values_and_parameter_gradients():
    points, normals = _sphere_points(64, RADIUS)
    off, _ = _sphere_points(64, RADIUS + 0.1)
    targets = torch.cat([torch.full((32,), 0.1), torch.full((32,), SPURIOUS_DISTANCE / 2)]).double()
    sphere = ScaledSphere(2.0)
    terms = _terms(sphere, points, -normals, off, targets)
    # Gradients point against the given normals (cos = -1) and have length 2.
    assert math.isclose(terms["normal"].item(), 2.0, rel_tol=1e-5)
    assert math.isclose(terms["eikonal"].item(), 1.0, rel_tol=1e-5)
    # Only the 32 points with |target| >= SPURIOUS_DISTANCE count; there f = 2 * 0.1.
    assert math.isclose(terms["spurious"].item(), math.exp(-SPURIOUS_SHARPNESS * 0.2), rel_tol=1e-4)
    # The eikonal term (scale - 1)^2 differentiates through the field's gradient: d/dscale = 2.
    (scale_gradient,) = torch.autograd.grad(terms["eikonal"], sphere.scale)
    assert math.isclose(scale_gradient.item(), 2.0, rel_tol=1e-5)


@pytest.mark.parametrize("winding", ["as given", "every face reversed", "one piece reversed"])
def test_mesh_batches_carry_outward_face_normals(winding):
    """On two copies of the bunny scan, each oriented point's normal points out: the
    mesh's own signed distance is positive a little along it and negative a little
    against it, also when the whole mesh, or one of its pieces, is wound inside out."""
    bunny, _ = load_normalized(shared_file("meshes", "bunny00.off"))
    # Two half-size bunnies side by side: two pieces.
    small = 0.5 * bunny.vertices
    scan = Mesh(
        np.concatenate([small, small + [0.5, 0.0, 0.0]]), np.concatenate([bunny.faces, bunny.faces + len(small)])
    )
    second_piece = np.arange(len(scan.faces)) >= len(bunny.faces)
    reversed_faces = {
        "as given": np.zeros_like(second_piece),
        "every face reversed": np.ones_like(second_piece),
        "one piece reversed": second_piece,
    }[winding]
    mesh = Mesh(scan.vertices, np.where(reversed_faces[:, None], scan.faces[:, ::-1], scan.faces))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal = MeshSDF(mesh, batch_size=256, pool_size=2**12)
    messages = [str(w.message) for w in caught if issubclass(w.category, ShapeWarning)]
    if winding == "as given":
        assert messages == []
    else:
        share = "100.0%" if winding == "every face reversed" else "50.0%"
        assert messages == [
            f"mesh: {share} of the mesh's area is wound inside out; the fit turns it outward "
            "for its normal term (metrics compare with the faces as given)"
        ]
    inputs, targets = signal.batch(0, torch.Generator().manual_seed(0))
    assert inputs.points.shape == (256, 3) and targets.shape == (256, 1)
    assert inputs.oriented_points.shape == inputs.oriented_normals.shape == (GRADIENT_POINTS, 3)
    assert torch.allclose(inputs.oriented_normals.norm(dim=1), torch.ones(GRADIENT_POINTS), atol=1e-5)
    points, normals = inputs.oriented_points.double().numpy(), inputs.oriented_normals.double().numpy()
    outside, inside = winding_sdf(mesh, points + 1e-3 * normals), winding_sdf(mesh, points - 1e-3 * normals)
    assert (outside > 0).mean() > 0.95 and (inside < 0).mean() > 0.95


@pytest.mark.parametrize("gradient_step", [DIFFERENCE_STEP, 0.0], ids=["central differences", "exact"])
def test_mesh_loss_adds_the_normal_term_to_mape(gradient_step):
    """A MeshSDF's loss is MAPE plus MESH_NORMAL_WEIGHT * (1 - cos): exactly 2 for
    the sphere field against flipped normals at zero-distance targets on it, with
    gradients by central differences or by autograd."""
    points, normals = _sphere_points(64, RADIUS)
    signal = MeshSDF.__new__(MeshSDF)
    signal.gradient_step = gradient_step
    loss = MeshSDF.training_loss(
        signal, ScaledSphere(1.0), OrientedBatch(points, points, -normals), torch.zeros(64, 1, dtype=torch.float64)
    )
    assert math.isclose(loss.item(), 2.0 * MESH_NORMAL_WEIGHT, abs_tol=1e-9)


def test_point_cloud_loss_is_the_same_by_central_differences_and_by_autograd():
    """All three gradient terms of a point-cloud fit, on a sphere scaled by 1.5 with
    its surface points, normals and off-surface pool points: the two ways of
    taking the gradient agree, and the eikonal term is the exact (1.5 - 1)^2."""
    surface, normals = _sphere_points(GRADIENT_POINTS, RADIUS)
    off, _ = _sphere_points(GRADIENT_POINTS, RADIUS + 0.05)
    targets = torch.cat(
        [
            torch.zeros(GRADIENT_POINTS, 1, dtype=torch.float64),
            torch.full((GRADIENT_POINTS, 1), 0.05, dtype=torch.float64),
        ]
    )
    batch = OrientedBatch(torch.cat([surface, off]), surface, normals)
    losses = {}
    for step in (DIFFERENCE_STEP, 0.0):
        signal = PointCloudSDF.__new__(PointCloudSDF)
        signal.gradient_step = step
        losses[step] = PointCloudSDF.training_loss(signal, ScaledSphere(1.5), batch, targets).item()
    # MAPE: 0 on the surface half, |1.5 * 0.05 - 0.05| / 0.06 on the off half; normal term 0;
    # eikonal 0.25 everywhere; spurious exp(-100 * 0.075) at the off points (all >= 0.02 away).
    expected = 0.5 * 0.025 / 0.06 + EIKONAL_WEIGHT * 0.25 + SPURIOUS_WEIGHT * math.exp(-SPURIOUS_SHARPNESS * 0.075)
    assert math.isclose(losses[0.0], expected, rel_tol=1e-9)
    assert math.isclose(losses[DIFFERENCE_STEP], expected, rel_tol=1e-6)
