"""The written contracts between the trainer, signals and fields.

Data flows one way: a :class:`Signal` yields batches of (inputs, targets),
a :class:`TrainableField` maps inputs to predictions, and the signal's loss
and metrics judge them. :func:`rbfield.train.fit` knows nothing else about
images, shapes or scenes, so a new kind of signal only has to implement
:class:`Signal`.

Metrics, during training and at the end, are one shape for every task: a
flat ``dict`` from a metric's name (``"psnr"``, ``"iou"``, ``"nae_deg"``) to a
float, or None where it cannot be computed (no mesh, no reference); a task
may add per-item lists (``"per_view"``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from rbfield.spec import SignalSpec

#: Metric name -> value (None where it cannot be computed); see the module docstring.
Metrics = dict[str, Any]


@runtime_checkable
class TrainableField(Protocol):
    """What the trainer needs of a field (:class:`rbfield.fields.FieldBase` implements it).

    Besides ``torch.nn.Module``'s ``parameters``, ``state_dict``,
    ``load_state_dict``, ``train`` and ``eval``, a field has:

    * ``config``: the dict that rebuilds it (:func:`rbfield.fields.field_from_config`);
    * ``param_groups()``: optimizer groups with base learning rates;
    * ``param_counts()``: {"trainable", "total"} element counts;
    * ``initialize(signal)``: data-driven set-up before the first step.
    """

    config: dict

    def param_groups(self) -> list[dict]: ...

    def param_counts(self) -> dict[str, int]: ...

    def initialize(self, signal: Signal) -> None: ...

    def parameters(self, recurse: bool = True): ...

    def state_dict(self, *args, **kwargs) -> dict: ...

    def load_state_dict(self, state_dict: dict, strict: bool = True): ...

    def train(self, mode: bool = True): ...

    def eval(self): ...


@runtime_checkable
class Signal(Protocol):
    """What the trainer needs of a signal (image, SDF, scene).

    Every method is called by :func:`rbfield.train.fit`:

    * ``spec()``: the shape of the signal, to size a field for it;
    * ``batch(step, generator)``: ``(inputs, targets)`` of one step, drawn only
      from ``generator`` (seeded by the seed and step, so a resumed run sees the
      same batches);
    * ``training_loss(field, inputs, targets)``: a scalar tensor to minimise;
    * ``progress(loss)``: numbers for the progress bar (e.g. PSNR from the loss);
    * ``evaluate(field)``: cheap :data:`Metrics` recorded in the history every
      ``eval_every`` steps;
    * ``after_step(field, step)``: bookkeeping after each optimizer step
      (refresh a sample pool or an occupancy grid; may do nothing).

    Each signal also has ``final_metrics(field, ...) -> Metrics``, the full
    evaluation its task runs once at the end (its options differ by task).
    """

    def spec(self) -> SignalSpec: ...

    def batch(self, step: int, generator: torch.Generator) -> tuple[Any, torch.Tensor]: ...

    def training_loss(self, field: TrainableField, inputs: Any, targets: torch.Tensor) -> torch.Tensor: ...

    def progress(self, loss: float) -> dict[str, float]: ...

    def evaluate(self, field: TrainableField) -> Metrics: ...

    def after_step(self, field: TrainableField, step: int) -> None: ...
