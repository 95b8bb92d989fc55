"""The trainable field types: what every field offers the trainer, and Field = encoding + decoder."""

from __future__ import annotations

import torch
from torch import nn

from rbfield.encodings import AdaptiveRBF
from rbfield.errors import RbfieldError
from rbfield.ops import return_freed_memory


class FieldBase(nn.Module):
    """Behaviour shared by every field (see :class:`rbfield.contracts.TrainableField`).

    Args:
        config: everything :func:`rbfield.fields.field_from_config` needs to
            rebuild this field (preset, spec, budget, seed, settings); saved
            beside the weights.
        learning_rates: {submodule name: base learning rate}; each named
            submodule's trainable tensors form one optimizer group.
    """

    #: Submodules that are acceleration structures (e.g. an occupancy grid),
    #: not part of the represented signal: left out of the parameter counts.
    ACCELERATION_MODULES: tuple[str, ...] = ()

    def __init__(self, config: dict, learning_rates: dict[str, float]):
        super().__init__()
        self.config = config
        self.learning_rates = learning_rates

    def param_groups(self) -> list[dict]:
        """Optimizer groups {"name", "params", "lr"} of the trainable tensors, one per learning rate."""
        groups = []
        for name, lr in self.learning_rates.items():
            params = [p for p in getattr(self, name).parameters() if p.requires_grad]
            if params:
                groups.append({"name": name, "params": params, "lr": lr})
        return groups

    def param_counts(self) -> dict[str, int]:
        """Parameter counts, the one definition used everywhere.

        ``trainable``: elements of the tensors the optimizer updates.
        ``total``: trainable + every frozen floating-point tensor of the saved
        state (frozen RBF centres and shapes, random Fourier matrices), i.e. all
        numbers the field needs to be evaluated. Acceleration structures
        (:attr:`ACCELERATION_MODULES`) are excluded from both; their floating-point
        elements (an occupancy grid's cells) are counted as ``acceleration``.
        """
        skipped = tuple(f"{name}." for name in self.ACCELERATION_MODULES)
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        trainable_ids = {id(p) for p in self.parameters() if p.requires_grad}
        frozen = acceleration = 0
        for name, tensor in self.state_dict(keep_vars=True).items():
            if not tensor.is_floating_point():
                continue  # flags and masks
            if name.startswith(skipped):
                acceleration += tensor.numel()
            elif id(tensor) not in trainable_ids:
                frozen += tensor.numel()
        counts = {"trainable": int(trainable), "total": int(trainable + frozen)}
        if self.ACCELERATION_MODULES:
            counts["acceleration"] = int(acceleration)
        return counts

    def rbf_encodings(self) -> list[AdaptiveRBF]:
        """Every adaptive RBF encoding inside the field."""
        return [m for m in self.modules() if isinstance(m, AdaptiveRBF)]

    def initialize(self, signal) -> None:
        """Data-driven set-up before training: weighted k-means of the RBF centres.

        ``signal.rbf_init_samples(n_kernels, weight_power)`` is told the most
        RBFs any encoding places (so it can size a bounded sample) and the
        exponent of its placement weights, and must return (points (M, d) in
        [0, 1]^d, weights (M,), spacing in the same units). The presets have
        one RBF encoding; with several, the largest one's exponent applies.
        Fields without RBFs ignore the call.
        """
        encodings = self.rbf_encodings()
        if not encodings:
            return
        largest = max(encodings, key=lambda encoding: encoding.n_kernels)
        points, weights, spacing = signal.rbf_init_samples(largest.n_kernels, largest.placement_power)
        return_freed_memory()  # drawing the sample's temporaries, before k-means allocates its own
        for encoding in encodings:
            if encoding.n_kernels > points.shape[0]:
                raise RbfieldError(
                    f"the field has {encoding.n_kernels} RBFs but the signal only "
                    f"{points.shape[0]} samples; use a smaller --params budget"
                )
            encoding.initialize(points, weights, spacing, seed=self.config.get("seed", 0))


class Field(FieldBase):
    """A neural field ``decoder(encoding(x))`` for images and SDFs.

    Args:
        encoding: maps (P, d) coordinates in [0, 1]^d to (P, F) features.
        decoder: maps (P, F) features to (P, out_dim) values.
        config, learning_rates: as :class:`FieldBase`; the rates are keyed
            "encoding" and "decoder".
    """

    def __init__(self, encoding: nn.Module, decoder: nn.Module, config: dict, learning_rates: dict[str, float]):
        super().__init__(config, learning_rates)
        self.encoding = encoding
        self.decoder = decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) coordinates in [0, 1]^d -> (..., out_dim) values."""
        leading = x.shape[:-1]
        values = self.decoder(self.encoding(x.reshape(-1, x.shape[-1])))
        return values.reshape(*leading, values.shape[-1])
