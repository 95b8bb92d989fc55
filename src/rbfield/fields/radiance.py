"""Radiance fields for scenes: world point (and view direction) -> density and colour.

Every field maps points inside its axis-aligned scene box; coordinates are
normalized to [0, 1]^3 by the box. Presets, each sized to a budget of
*trainable* parameters (frozen RBF centres and shapes are extra; the
occupancy grid is an acceleration structure, counted apart):

* ``instant-ngp`` -- 16-level hash grid (2 features per level, finest
  resolution 512, table 2**T as large as fits) -> 1-hidden-layer 64-wide MLP
  giving log-density and 15 geometry features; colour from those features and
  the view direction's spherical harmonics (degree < 4) by a 2-hidden-layer
  64-wide MLP (Mueller et al. 2022).
* ``tensorf`` -- TensoRF vector-matrix factorisation (Chen et al. 2022): density
  from 8 VM components per plane/line pair, appearance from 24, a linear basis
  to 27 features, and a 2-hidden-layer 64-wide MLP on those features and a
  2-frequency encoding of the view direction; the grid resolution is the
  largest that fits.
* ``neurbf`` -- ``tensorf`` with adaptive RBF features (inverse quadric, 5
  neighbours, unnormalized, sinusoid composition) concatenated to the
  appearance features before the basis (NeuRBF's scene setting). A quarter of
  the budget goes to the RBF weights. The RBF branch is off during a
  grid-only warm-up; then centres are placed by weighted k-means with point
  weights ``(1 - exp(-sigma)) * |grad appearance feature|`` and shapes from
  the cluster covariances / 0.3.

The scene box and the occupancy resolution come from the signal's spec
(``spec.context["box"]``, ``spec.context["occupancy_resolution"]``; see
:func:`rbfield.signals.radiance.scene_spec`).
Densities are in 1 / scene unit; colours in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rbfield.decoders import MLP, mlp_param_count
from rbfield.encodings import (
    AdaptiveRBF,
    MultiresGrid,
    VectorMatrix,
    frequency_encoding,
    spherical_harmonics,
)
from rbfield.encodings.grid import grid_layout
from rbfield.encodings.vector_matrix import vm_param_count
from rbfield.fields.field import FieldBase
from rbfield.fields.presets import largest_fitting, too_small
from rbfield.fields.settings import (
    RadianceHashGridSettings,
    RadianceNeuRBFSettings,
    TensorfSettings,
)
from rbfield.scenes.occupancy import OccupancyGrid
from rbfield.spec import SignalSpec


class RadianceField(FieldBase):
    """Box normalization and the occupancy grid shared by every scene field.

    Subclasses implement ``density(x)`` (P, 3) -> (P,), ``colour(x, directions)``
    (P, 3), (P, 3) unit -> (P, 3) in [0, 1], and ``forward(x, directions)`` ->
    (density, colour).
    """

    ACCELERATION_MODULES = ("occupancy",)

    def __init__(self, config: dict, learning_rates: dict[str, float]):
        super().__init__(config, learning_rates)
        context = config["spec"]["context"]
        low, high = context["box"]
        self.register_buffer("box_min", torch.full((3,), float(low)), persistent=False)
        self.register_buffer("box_max", torch.full((3,), float(high)), persistent=False)
        self.occupancy = OccupancyGrid(self.box_min, self.box_max, context["occupancy_resolution"])

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(P, 3) world points -> (P, 3) in [0, 1]^3 (clamped)."""
        return ((x - self.box_min) / (self.box_max - self.box_min)).clamp(0.0, 1.0)

    def initialize(self, signal) -> None:
        """Nothing up front: a scene field's RBFs are placed after its grid-only warm-up."""


def trunc_exp(x: torch.Tensor) -> torch.Tensor:
    """exp with its argument clamped at 15, so one bad step cannot overflow."""
    return torch.exp(x.clamp(max=15.0))


class NgpField(RadianceField):
    """Hash-grid density + SH-conditioned colour MLP (see module docstring)."""

    def __init__(self, config: dict, log2_table: int, s: RadianceHashGridSettings):
        super().__init__(config, {"grid": s.lr, "density_net": s.lr, "colour_net": s.lr})
        self.grid = MultiresGrid(3, s.levels, s.features, log2_table, s.base, s.finest)
        self.density_net = MLP(self.grid.out_dim, 1 + s.geo_features, s.hidden, 2)
        self.colour_net = MLP(s.geo_features + 16, 3, s.hidden, 3)

    def _geometry(self, x: torch.Tensor) -> torch.Tensor:
        return self.density_net(self.grid(self.normalize(x)))

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return trunc_exp(self._geometry(x)[:, 0])

    def _rgb(self, h: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.colour_net(torch.cat([h[:, 1:], spherical_harmonics(directions)], -1)))

    def colour(self, x: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
        return self._rgb(self._geometry(x), directions)

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self._geometry(x)
        return trunc_exp(h[:, 0]), self._rgb(h, directions)


class TensorfField(RadianceField):
    """TensoRF-VM field, optionally with adaptive RBF appearance features (NeuRBF)."""

    def __init__(self, config: dict, resolution: int, s: TensorfSettings, n_kernels: int = 0):
        rates = {"density_grid": s.lr_grid, "app_grid": s.lr_grid, "basis": s.lr_network, "colour_net": s.lr_network}
        if n_kernels:
            rates["rbf"] = s.lr_rbf
        super().__init__(config, rates)
        self.settings = s
        self.density_grid = VectorMatrix(s.density_components, resolution, s.init_scale)
        self.app_grid = VectorMatrix(s.app_components, resolution, s.init_scale)
        appearance_dim = self.app_grid.out_dim
        self.rbf = None
        if n_kernels:
            self.rbf = AdaptiveRBF(
                3,
                n_kernels,
                s.channels,
                kernel="inverse_quadric",
                k_neighbours=s.k_neighbours,
                frequency_range=s.frequency_range,
                normalize=False,
                shape_alpha=s.shape_alpha,
            )
            appearance_dim += s.channels
            self.register_buffer("rbf_active", torch.zeros((), dtype=torch.bool))
        self.basis = torch.nn.Linear(appearance_dim, s.basis, bias=False)
        view_dim = 3 + 6 * s.view_frequencies
        self.colour_net = MLP(s.basis + view_dim, 3, s.hidden, 3)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.density_grid(self.normalize(x)).sum(-1) + self.settings.density_shift)

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
        view = frequency_encoding(directions, self.settings.view_frequencies)
        return torch.sigmoid(self.colour_net(torch.cat([self.basis(self.appearance(self.normalize(x))), view], -1)))

    def forward(self, x: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.density(x), self.colour(x, directions)

    @torch.no_grad()
    def rbf_init_samples(self, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Weighted samples for RBF placement from the warmed-up grids.

        Points are uniform in the occupied cells; weight = (1 - exp(-sigma * cell))
        * |d appearance / dx| (central differences over one grid cell), as in
        NeuRBF's scene initialisation. Returns points (M, 3) in [0, 1]^3, weights
        (M,), and the grid spacing in the same units. The random draws come from ``generator`` on the CPU;
        the points and weights are on the field's device.
        """
        resolution = self.app_grid.planes.shape[-1]
        spacing = 1.0 / (resolution - 1)
        grid = self.occupancy
        occupied = grid.occupied.nonzero()[:, 0]
        if occupied.numel() == 0:
            occupied = torch.arange(grid.occupied.numel())
        pick = occupied.cpu()[torch.randint(occupied.numel(), (count,), generator=generator)]
        r = grid.resolution
        cells = torch.stack([pick // (r * r), (pick // r) % r, pick % r], -1).float()
        unit = ((cells + torch.rand(count, 3, generator=generator)) / r).to(self.box_min.device)
        world = self.box_min + unit * (self.box_max - self.box_min)
        sigma = torch.cat([self.density(world[i : i + 2**16]) for i in range(0, count, 2**16)])
        cell_size = float((self.box_max - self.box_min)[0]) * spacing
        gradient = torch.zeros(count, device=unit.device)
        for axis in range(3):
            step = torch.zeros(3, device=unit.device)
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
        points, weights, spacing = self.rbf_init_samples(self.settings.init_samples, generator)
        keep = weights > 0
        if int(keep.sum()) < self.rbf.n_kernels:
            keep = torch.ones_like(keep)
            weights = weights + 1e-6
        self.rbf.initialize(points[keep], weights[keep], spacing, seed=self.config.get("seed", 0))
        self.rbf_active.fill_(True)


def build_radiance_hash_grid(spec: SignalSpec, budget: int, s: RadianceHashGridSettings, config: dict) -> NgpField:
    networks = mlp_param_count(s.levels * s.features, s.hidden, 2, 1 + s.geo_features)
    networks += mlp_param_count(s.geo_features + 16, s.hidden, 3, 3)

    def cost(log2_table: int) -> int:
        return grid_layout(3, s.levels, log2_table, s.base, s.finest).total_rows * s.features + networks

    if cost(10) > budget:
        raise too_small("instant-ngp", budget, cost(10))
    return NgpField(config, largest_fitting(cost, 10, 24, budget), s)


def _tensorf_networks(s: TensorfSettings, extra_features: int) -> int:
    appearance_dim = 3 * s.app_components + extra_features
    colour_in = s.basis + 3 + 6 * s.view_frequencies
    return appearance_dim * s.basis + mlp_param_count(colour_in, s.hidden, 3, 3)


def _vm_resolution(s: TensorfSettings, grid_budget: int, preset: str, budget: int) -> int:
    components = s.density_components + s.app_components
    if vm_param_count(components, 16) > grid_budget:
        raise too_small(preset, budget, budget - grid_budget + vm_param_count(components, 16))
    return largest_fitting(lambda resolution: vm_param_count(components, resolution), 16, 1024, grid_budget)


def build_tensorf(spec: SignalSpec, budget: int, s: TensorfSettings, config: dict) -> TensorfField:
    return TensorfField(config, _vm_resolution(s, budget - _tensorf_networks(s, 0), "tensorf", budget), s)


def _radiance_neurbf_layout(s: RadianceNeuRBFSettings, budget: int) -> tuple[int, int]:
    """(number of RBFs, parameters left for the VM grids) of a scene NeuRBF field at ``budget``."""
    networks = _tensorf_networks(s, s.channels) + s.channels  # + the sinusoid phases
    n_kernels = int(s.rbf_share * budget) // s.channels
    return n_kernels, budget - networks - n_kernels * s.channels


def _radiance_neurbf_fits(s: RadianceNeuRBFSettings, budget: int) -> bool:
    n_kernels, grid_budget = _radiance_neurbf_layout(s, budget)
    components = s.density_components + s.app_components
    return n_kernels >= 4 * s.k_neighbours and grid_budget >= vm_param_count(components, 16)


def _radiance_neurbf_smallest_budget(s: RadianceNeuRBFSettings) -> int:
    """The smallest budget that holds the minimum RBFs and the smallest VM grids."""
    components = s.density_components + s.app_components
    networks = _tensorf_networks(s, s.channels) + s.channels
    budget = max(
        math.ceil(4 * s.k_neighbours * s.channels / s.rbf_share),
        math.ceil((networks + vm_param_count(components, 16)) / (1.0 - s.rbf_share)),
    )
    while not _radiance_neurbf_fits(s, budget):  # rounding of the RBF count: a few steps at most
        budget += 1
    return budget


def build_radiance_neurbf(spec: SignalSpec, budget: int, s: RadianceNeuRBFSettings, config: dict) -> TensorfField:
    if not _radiance_neurbf_fits(s, budget):
        raise too_small("neurbf", budget, _radiance_neurbf_smallest_budget(s))
    n_kernels, grid_budget = _radiance_neurbf_layout(s, budget)
    return TensorfField(config, _vm_resolution(s, grid_budget, "neurbf", budget), s, n_kernels)
