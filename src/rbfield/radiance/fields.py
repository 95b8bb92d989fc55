"""Radiance fields: world point (and view direction) -> density and colour.

Every field maps points inside its axis-aligned scene box; coordinates are
normalised to [0, 1]^3 by the box. Presets, each sized to a budget of
*trainable* parameters (frozen RBF centres/shapes and the occupancy grid are
extra and reported separately):

* ``instant-ngp`` -- 16-level hash grid (2 features per level, finest
  resolution 512, table 2**T as large as fits) -> 1-hidden-layer 64-wide MLP
  giving log-density and 15 geometry features; colour from those features and
  the view direction's spherical harmonics (degree 4) by a 2-hidden-layer
  64-wide MLP (Mueller et al. 2022).
* ``tensorf`` -- TensoRF vector-matrix factorisation (Chen et al. 2022): density
  from 8 VM components per plane/line pair, appearance from 24, a linear basis
  to 27 features, and a 2-hidden-layer 64-wide MLP on those features and a
  2-frequency encoding of the view direction; the grid resolution is the
  largest that fits.
* ``neurbf`` -- ``tensorf`` with adaptive RBF features (inverse quadric, 5
  neighbours, unnormalised, sinusoid composition) concatenated to the
  appearance features before the basis (NeuRBF's NeRF setting). A quarter of
  the budget goes to the RBF weights. The RBF branch is off during a
  grid-only warm-up; then centres are placed by weighted k-means with point
  weights ``(1 - exp(-sigma)) * |grad appearance feature|`` and shapes from
  the cluster covariances / 0.3 (DESIGN.md Sec. 2).

Densities are in 1 / scene unit; colours in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from rbfield.decoders import MLP, mlp_param_count
from rbfield.encodings import AdaptiveRBF, MultiresGrid
from rbfield.encodings.grid import grid_layout
from rbfield.errors import RbfieldError
from rbfield.radiance.occupancy import OccupancyGrid

RADIANCE_KIND = "radiance"
DEFAULT_BOX = (-1.0, 1.0)
OCCUPANCY_RESOLUTION = 64

NGP = dict(levels=16, features=2, base=16, finest=512, hidden=64, geo_features=15, lr=1e-2)
TENSORF = dict(density_components=8, app_components=24, basis=27, hidden=64, view_frequencies=2,
               density_shift=-10.0, lr_grid=2e-2, lr_network=1e-3, init_scale=0.1)
NEURBF = dict(channels=32, k_neighbours=5, frequency_range=(1.0, 2.0**8), shape_alpha=0.3, rbf_share=0.25,
              lr_rbf=1e-2, warmup_fraction=0.15, init_samples=2**19)


def spherical_harmonics(directions: torch.Tensor) -> torch.Tensor:
    """Real spherical harmonics of degree < 4 (16 terms) of (P, 3) unit vectors -> (P, 16)."""
    x, y, z = directions.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    return torch.stack([
        torch.full_like(x, 0.28209479177387814),
        -0.48860251190291987 * y, 0.48860251190291987 * z, -0.48860251190291987 * x,
        1.0925484305920792 * x * y, -1.0925484305920792 * y * z, 0.94617469575755997 * zz - 0.31539156525251999,
        -1.0925484305920792 * x * z, 0.54627421529603959 * (xx - yy),
        0.59004358992664352 * y * (-3.0 * xx + yy), 2.8906114426405538 * x * y * z,
        0.45704579946446572 * y * (1.0 - 5.0 * zz), 0.3731763325901154 * z * (5.0 * zz - 3.0),
        0.45704579946446572 * x * (1.0 - 5.0 * zz), 1.4453057213202769 * z * (xx - yy),
        0.59004358992664352 * x * (-xx + 3.0 * yy),
    ], dim=-1)


def frequency_encoding(x: torch.Tensor, n_frequencies: int) -> torch.Tensor:
    """(P, D) -> (P, D + 2 D n): x, sin(2^k x), cos(2^k x) for k < n."""
    scaled = x[..., None, :] * (2.0 ** torch.arange(n_frequencies, dtype=x.dtype))[:, None]
    return torch.cat([x, torch.sin(scaled).flatten(-2), torch.cos(scaled).flatten(-2)], dim=-1)


class RadianceField(nn.Module):
    """Shared behaviour: box normalisation, occupancy grid, optimizer groups, counts.

    Subclasses implement ``density(x)`` (P, 3) -> (P,), ``colour(x, directions)``
    (P, 3), (P, 3) unit -> (P, 3) in [0, 1], and ``forward(x, directions)`` ->
    (density, colour).
    """

    def __init__(self, config: dict, learning_rates: dict):
        super().__init__()
        self.config = config
        self.learning_rates = learning_rates
        low, high = config["box"]
        self.register_buffer("box_min", torch.full((3,), float(low)), persistent=False)
        self.register_buffer("box_max", torch.full((3,), float(high)), persistent=False)
        self.occupancy = OccupancyGrid(self.box_min, self.box_max, config["occupancy_resolution"])

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """(P, 3) world points -> (P, 3) in [0, 1]^3 (clamped)."""
        return ((x - self.box_min) / (self.box_max - self.box_min)).clamp(0.0, 1.0)

    def param_groups(self) -> list[dict]:
        groups = []
        for name, lr in self.learning_rates.items():
            params = [p for p in getattr(self, name).parameters() if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr": lr})
        return groups

    def param_counts(self) -> dict:
        """Trainable parameters, all parameters (incl. frozen RBF geometry), and occupancy cells."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        return {"trainable": int(trainable), "total": int(total), "occupancy_cells": int(self.occupancy.opacity.numel())}

    def rbf_encodings(self) -> list[AdaptiveRBF]:
        return [m for m in self.modules() if isinstance(m, AdaptiveRBF)]


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """exp with its argument clamped at 15, so one bad step cannot overflow."""
    return torch.exp(x.clamp(max=15.0))


class NgpField(RadianceField):
    """Hash-grid density + SH-conditioned colour MLP (see module docstring)."""

    def __init__(self, config: dict, log2_table: int):
        super().__init__(config, {"grid": NGP["lr"], "density_net": NGP["lr"], "colour_net": NGP["lr"]})
        self.grid = MultiresGrid(3, NGP["levels"], NGP["features"], log2_table, NGP["base"], NGP["finest"])
        self.density_net = MLP(self.grid.out_dim, 1 + NGP["geo_features"], NGP["hidden"], 2)
        self.colour_net = MLP(NGP["geo_features"] + 16, 3, NGP["hidden"], 3)

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        return self.density_net(self.grid(self.normalise(x)))

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return trunc_exp(self._geometry(x)[:, 0])

    def _rgb(self, h: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.colour_net(torch.cat([h[:, 1:], spherical_harmonics(directions)], -1)))

    def colour(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self._rgb(self._geometry(x), directions)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._geometry(x)
        return trunc_exp(h[:, 0]), self._rgb(h, directions)


class VectorMatrix(nn.Module):
    """TensoRF VM decomposition: for each axis m, C plane x line component products.

    Args:
        components: C per axis.
        resolution: grid points per axis.
        init_scale: standard deviation of the initial values.

    Input (P, 3) in [0, 1]^3; output (P, 3 C) features (axis-major).
    """

    PLANE_AXES = ((0, 1), (0, 2), (1, 2))
    LINE_AXES = (2, 1, 0)

    def __init__(self, components: int, resolution: int, init_scale: float):
        super().__init__()
        self.planes = nn.Parameter(init_scale * torch.randn(3, components, resolution, resolution))
        self.lines = nn.Parameter(init_scale * torch.randn(3, components, resolution, 1))
        self.out_dim = 3 * components

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x * 2.0 - 1.0  # grid_sample coordinates; x indexes width, y height
        plane_coords = torch.stack([g[:, list(axes)] for axes in self.PLANE_AXES])  # (3, P, 2)
        line_coords = torch.stack([torch.stack([torch.zeros_like(g[:, a]), g[:, a]], -1) for a in self.LINE_AXES])
        plane = F.grid_sample(self.planes, plane_coords[:, :, None], align_corners=True)  # (3, C, P, 1)
        line = F.grid_sample(self.lines, line_coords[:, :, None], align_corners=True)
        return (plane * line)[..., 0].permute(2, 0, 1).reshape(x.shape[0], self.out_dim)


def vm_param_count(components: int, resolution: int) -> int:
    return 3 * components * (resolution * resolution + resolution)


class TensorfField(RadianceField):
    """TensoRF-VM field, optionally with adaptive RBF appearance features (NeuRBF)."""

    def __init__(self, config: dict, resolution: int, n_kernels: int = 0):
        s = TENSORF
        rates = {"density_grid": s["lr_grid"], "app_grid": s["lr_grid"], "basis": s["lr_network"], "colour_net": s["lr_network"]}
        if n_kernels:
            rates["rbf"] = NEURBF["lr_rbf"]
        super().__init__(config, rates)
        self.density_grid = VectorMatrix(s["density_components"], resolution, s["init_scale"])
        self.app_grid = VectorMatrix(s["app_components"], resolution, s["init_scale"])
        appearance_dim = self.app_grid.out_dim
        self.rbf = None
        if n_kernels:
            self.rbf = AdaptiveRBF(3, n_kernels, NEURBF["channels"], kernel="inverse_quadric",
                                   k_neighbours=NEURBF["k_neighbours"], frequency_range=NEURBF["frequency_range"],
                                   normalize=False, shape_alpha=NEURBF["shape_alpha"])
            appearance_dim += NEURBF["channels"]
            self.register_buffer("rbf_active", torch.zeros((), dtype=torch.bool))
        self.basis = nn.Linear(appearance_dim, s["basis"], bias=False)
        view_dim = 3 + 6 * s["view_frequencies"]
        self.colour_net = MLP(s["basis"] + view_dim, 3, s["hidden"], 3)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.density_grid(self.normalise(x)).sum(-1) + TENSORF["density_shift"])

    def appearance(self, unit: torch.Tensor) -> torch.Tensor:
        """(P, 3) points in [0, 1]^3 -> (P, appearance_dim) features (RBF part zero until active)."""
        features = self.app_grid(unit)
        if self.rbf is None:
            return features
        if bool(self.rbf_active):
            rbf = self.rbf(unit)
        else:
            rbf = unit.new_zeros(unit.shape[0], self.rbf.out_dim)
        return torch.cat([features, rbf], -1)

    def colour(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        view = frequency_encoding(directions, TENSORF["view_frequencies"])
        return torch.sigmoid(self.colour_net(torch.cat([self.basis(self.appearance(self.normalise(x))), view], -1)))

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.density(x), self.colour(x, directions)

    @torch.no_grad()
    def rbf_init_samples(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Weighted samples for RBF placement from the warmed-up grids.

        Points are uniform in the occupied cells; weight = (1 - exp(-sigma * cell))
        * |d appearance / dx| (central differences over one grid cell), as in
        NeuRBF's NeRF initialisation. Returns points (M, 3) in [0, 1]^3, weights
        (M,), and the grid spacing in the same units.
        """
        resolution = self.app_grid.planes.shape[-1]
        spacing = 1.0 / (resolution - 1)
        grid = self.occupancy
        occupied = grid.occupied.nonzero()[:, 0]
        if occupied.numel() == 0:
            occupied = torch.arange(grid.occupied.numel())
        pick = occupied[torch.randint(occupied.numel(), (count,), generator=generator)]
        r = grid.resolution
        cells = torch.stack([pick // (r * r), (pick // r) % r, pick % r], -1).float()
        unit = (cells + torch.rand(count, 3, generator=generator)) / r
        world = self.box_min + unit * (self.box_max - self.box_min)
        sigma = torch.cat([self.density(world[i : i + 2**16]) for i in range(0, count, 2**16)])
        cell_size = float((self.box_max - self.box_min)[0]) * spacing
        gradient = torch.zeros(count)
        for axis in range(3):
            step = torch.zeros(3)
            step[axis] = spacing
            for i in range(0, count, 2**16):
                u = unit[i : i + 2**16]
                diff = self.app_grid((u + step).clamp(0, 1)) - self.app_grid((u - step).clamp(0, 1))
                gradient[i : i + 2**16] += (diff / (2 * spacing)).pow(2).sum(-1)
        weights = (1.0 - torch.exp(-sigma * cell_size)) * gradient.sqrt()
        return unit, weights, spacing

    @torch.no_grad()
    def activate_rbf(self, generator: torch.Generator) -> None:
        """Place the RBFs from the warmed-up grids and switch the RBF branch on."""
        points, weights, spacing = self.rbf_init_samples(NEURBF["init_samples"], generator)
        keep = weights > 0
        if int(keep.sum()) < self.rbf.n_kernels:
            keep = torch.ones_like(keep)
            weights = weights + 1e-6
        self.rbf.initialize(points[keep], weights[keep], spacing, seed=self.config.get("seed", 0))
        self.rbf_active.fill_(True)


def _too_small(preset: str, budget: int, needed: int) -> RbfieldError:
    return RbfieldError(f"a budget of {budget} trainable parameters is too small for field {preset!r}; it needs at least {needed}")


def _build_ngp(config: dict, budget: int) -> NgpField:
    networks = mlp_param_count(NGP["levels"] * NGP["features"], NGP["hidden"], 2, 1 + NGP["geo_features"])
    networks += mlp_param_count(NGP["geo_features"] + 16, NGP["hidden"], 3, 3)

    def size(log2_table: int) -> int:
        return grid_layout(3, NGP["levels"], log2_table, NGP["base"], NGP["finest"]).total_rows * NGP["features"] + networks

    if size(10) > budget:
        raise _too_small("instant-ngp", budget, size(10))
    log2_table = 10
    while log2_table < 24 and size(log2_table + 1) <= budget:
        log2_table += 1
    return NgpField(config, log2_table)


def _tensorf_networks(extra_features: int) -> int:
    s = TENSORF
    appearance_dim = 3 * s["app_components"] + extra_features
    return appearance_dim * s["basis"] + mlp_param_count(s["basis"] + 3 + 6 * s["view_frequencies"], s["hidden"], 3, 3)


def _vm_resolution(budget: int, preset: str) -> int:
    components = TENSORF["density_components"] + TENSORF["app_components"]
    if vm_param_count(components, 16) > budget:
        raise _too_small(preset, budget, vm_param_count(components, 16))
    resolution = 16
    while resolution < 1024 and vm_param_count(components, resolution + 1) <= budget:
        resolution += 1
    return resolution


def _build_tensorf(config: dict, budget: int) -> TensorfField:
    networks = _tensorf_networks(0)
    return TensorfField(config, _vm_resolution(budget - networks, "tensorf"))


def _build_neurbf(config: dict, budget: int) -> TensorfField:
    channels = NEURBF["channels"]
    networks = _tensorf_networks(channels) + channels  # + the sinusoid phases
    rbf_budget = int(NEURBF["rbf_share"] * budget)
    n_kernels = rbf_budget // channels
    if n_kernels < 4 * NEURBF["k_neighbours"]:
        raise _too_small("neurbf", budget, 4 * NEURBF["k_neighbours"] * channels * 4)
    resolution = _vm_resolution(budget - networks - n_kernels * channels, "neurbf")
    return TensorfField(config, resolution, n_kernels)


RADIANCE_PRESETS = {"instant-ngp": _build_ngp, "tensorf": _build_tensorf, "neurbf": _build_neurbf}


def build_radiance_field(preset: str, budget: int, seed: int = 0, box: tuple[float, float] = DEFAULT_BOX,
                         occupancy_resolution: int = OCCUPANCY_RESOLUTION, camera: dict | None = None) -> RadianceField:
    """Build a named radiance field sized to a trainable-parameter budget.

    Args:
        preset: a key of :data:`RADIANCE_PRESETS`.
        budget: trainable parameters allowed.
        seed: seeds the random initialisation.
        box: (low, high) of the cubic scene box, scene units.
        occupancy_resolution: occupancy cells per axis.
        camera: the training camera (width, height, fx, fy, cx, cy) and scene
            folder, kept in the config so renders need no data.
    """
    if preset not in RADIANCE_PRESETS:
        raise RbfieldError(f"unknown radiance field {preset!r}; choose one of: {', '.join(RADIANCE_PRESETS)}")
    config = {"kind": RADIANCE_KIND, "preset": preset, "budget": int(budget), "seed": seed, "box": list(box),
              "occupancy_resolution": occupancy_resolution, "camera": camera or {}}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RADIANCE_PRESETS[preset](config, int(budget))


def radiance_field_from_config(config: dict) -> RadianceField:
    """Rebuild an (uninitialised) radiance field from its config."""
    return build_radiance_field(config["preset"], config["budget"], config.get("seed", 0), tuple(config["box"]),
                                config["occupancy_resolution"], config.get("camera"))
