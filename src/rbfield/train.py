"""The one training loop. It knows fields and signals, nothing about images.

Its partners are written down in :mod:`rbfield.contracts`: a
:class:`~rbfield.contracts.Signal` supplies batches, the loss, progress numbers
and quick evaluations; a :class:`~rbfield.contracts.TrainableField` supplies
its optimizer groups and state.

Optimisation: Adam (betas 0.9/0.99, eps 1e-15) with the field's per-group
learning rates, decayed by a cosine from 1x to ``final_lr_fraction`` x over
the run (the run's progress is the larger of step/steps and time/budget).

Robustness: the checkpoint is written atomically every ``checkpoint_every``
steps, after every ``checkpoint_seconds`` of training (so a ``kill -9`` loses
at most that much) and at the end; Ctrl-C writes one and re-raises KeyboardInterrupt; a
non-finite loss raises :class:`TrainingDiverged` before the bad step is taken.
Batches are drawn from a generator seeded by (seed, step), so a resumed run
sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import torch
from tqdm import tqdm

from rbfield.contracts import Signal, TrainableField
from rbfield.errors import RbfieldError, TrainingDiverged
from rbfield.interrupts import DeferredInterrupts
from rbfield.io import CHECKPOINT_FILE, atomic_torch_save
from rbfield.ops import fast_paths_enabled, return_freed_memory


@dataclass
class TrainConfig:
    """Settings of one fit.

    Attributes:
        steps: optimisation steps; None to run on the time budget alone.
        time_budget: seconds of training (evaluation excluded); None for none.
        seed: seeds the batch order.
        eval_every: steps between evaluations (the PSNR-vs-step curve); 0: only at the end.
        checkpoint_every: steps between checkpoints (0: only at the end).
        checkpoint_seconds: seconds of training (evaluation excluded) between checkpoints, besides
            ``checkpoint_every`` (0: off).
        final_lr_fraction: learning rate at the end, as a fraction of the start.
        betas, eps: Adam settings (NeuRBF: (0.9, 0.99), 1e-15).
        progress: report progress on stderr: a bar on a terminal, one line per evaluation otherwise
            (a file or a pipe).
    """

    steps: int | None = 2000
    time_budget: float | None = None
    seed: int = 0
    eval_every: int = 250
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 60.0
    final_lr_fraction: float = 0.01
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15
    progress: bool = True

    def __post_init__(self):
        if self.steps is None and self.time_budget is None:
            raise RbfieldError("give a number of steps, a time budget, or both")
        if self.steps is not None and self.steps < 1:
            raise RbfieldError(f"steps must be at least 1, got {self.steps}")
        if self.time_budget is not None and not 0 < self.time_budget < math.inf:
            raise RbfieldError(f"the time budget must be a positive, finite number of seconds, got {self.time_budget}")
        if self.eval_every < 0 or self.checkpoint_every < 0:
            raise RbfieldError("eval_every and checkpoint_every must be 0 (off) or positive")
        if not 0 <= self.checkpoint_seconds < math.inf:
            raise RbfieldError(
                f"checkpoint_seconds must be 0 (off) or finite and positive, got {self.checkpoint_seconds}"
            )


@dataclass
class FitResult:
    """What a fit did: steps taken, training seconds, the evaluation history,
    and the seconds spent placing RBFs before the first step (0 when resumed
    or without RBFs; set by :func:`initialize_and_fit`)."""

    steps: int
    seconds: float
    history: list[dict] = dataclass_field(default_factory=list)
    init_seconds: float = 0.0


def cosine_factor(progress: float, final_fraction: float) -> float:
    """Learning-rate multiplier at run progress in [0, 1]: 1 -> final_fraction."""
    progress = min(max(progress, 0.0), 1.0)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _run_progress(config: TrainConfig, step: int, seconds: float) -> float:
    fractions = []
    if config.steps is not None:
        fractions.append(step / config.steps)
    if config.time_budget is not None:
        fractions.append(seconds / config.time_budget)
    return max(fractions)


def make_adam(groups: list[dict], config: TrainConfig) -> torch.optim.Adam:
    """Adam with the config's betas and eps over parameter groups.

    With fast paths on, PyTorch's fused Adam: one kernel over all tensors,
    about 3x faster than the per-tensor loop on the CPU at 1M parameters
    (``bench/ops.py``), the same update up to float rounding. Devices without
    a fused kernel get the plain loop.
    """
    if fast_paths_enabled():
        try:
            return torch.optim.Adam(groups, betas=config.betas, eps=config.eps, fused=True)
        except RuntimeError:  # a device or dtype the fused kernel does not support
            pass
    return torch.optim.Adam(groups, betas=config.betas, eps=config.eps)


def _make_optimizer(field: TrainableField, config: TrainConfig) -> torch.optim.Adam:
    groups = field.param_groups()
    for group in groups:
        group["base_lr"] = group["lr"]
    return make_adam(groups, config)


def _save_checkpoint(
    path: Path, field: TrainableField, optimizer, step: int, seconds: float, history: list, config: TrainConfig
):
    atomic_torch_save(
        path,
        {
            "field_config": field.config,
            "field_state": field.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "seconds": seconds,
            "history": history,
            "train_config": asdict(config),
        },
    )


def load_checkpoint(path: str | Path) -> dict:
    """Read a training checkpoint (``checkpoint.pt``) with a clear error if it is unusable."""
    path = Path(path)
    if not path.exists():
        raise RbfieldError(f"{path}: no checkpoint to resume from; run without --resume first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RbfieldError(f"{path}: unreadable checkpoint ({type(error).__name__}); start a new run") from None


def resume_state(field: TrainableField, checkpoint_path: str | Path) -> dict:
    """The checkpoint at ``checkpoint_path``, if ``field`` can continue from it.

    Raises:
        RbfieldError: no or unreadable checkpoint, or one of another task or another field.
    """
    state = load_checkpoint(checkpoint_path)
    stored = state.get("field_config") if isinstance(state, dict) else None
    if not isinstance(stored, dict) or "step" not in state:
        raise RbfieldError(f"{checkpoint_path}: not an rbfield training checkpoint; start a new run")
    task, stored_task = field.config["spec"]["task"], stored.get("spec", {}).get("task")
    if stored_task != task:
        raise RbfieldError(
            f"{checkpoint_path} is a checkpoint of another task ({stored_task}), not of this {task} fit; "
            "choose another --out or drop --resume"
        )
    if stored != field.config:
        raise RbfieldError(
            f"{checkpoint_path} was made by a different field ({stored.get('preset')}, "
            f"budget {stored.get('budget')}); use the same --field and --params"
        )
    return state


def _start_or_resume(field: TrainableField, config: TrainConfig, checkpoint_path: Path | None, resume: bool):
    """The optimizer and (step, seconds, history), fresh or from the checkpoint."""
    optimizer = _make_optimizer(field, config)
    if not resume:
        return optimizer, 0, 0.0, []
    if checkpoint_path is None:
        raise RbfieldError("resuming needs a run folder")
    state = resume_state(field, checkpoint_path)
    field.load_state_dict(state["field_state"])
    optimizer.load_state_dict(state["optimizer"])
    return optimizer, state["step"], state["seconds"], state["history"]


def fit(
    field: TrainableField, signal: Signal, config: TrainConfig, run_dir: str | Path | None = None, resume: bool = False
) -> FitResult:
    """Train ``field`` on ``signal``.

    Args:
        field: an initialised field (see :meth:`~rbfield.fields.FieldBase.initialize`).
        signal: the signal to fit.
        config: the run's settings.
        run_dir: where ``checkpoint.pt`` goes; None for no checkpoints.
        resume: continue from ``run_dir/checkpoint.pt``.

    Returns:
        A :class:`FitResult`; ``field`` holds the trained weights.

    Raises:
        TrainingDiverged: the loss became NaN/inf (the last checkpoint is kept).
        KeyboardInterrupt: after writing a resumable checkpoint, if training
            had started (an interrupt during set-up writes nothing). Ctrl-C or
            SIGTERM during training ends the current step first
            (:class:`~rbfield.interrupts.DeferredInterrupts`); a second one
            stops at once.

    Side effect: turns on flush-to-zero of denormal floats for the process
    (``torch.set_flush_denormal(True)``). Adam's second moments of rarely
    touched grid rows sink into the denormal range, where the CPU's arithmetic
    on them is many times slower (Adam's sqrt and division were 10 % of an
    instant-ngp image step here); values below ~1e-38 become 0.

    Example:
        >>> import numpy as np
        >>> from rbfield import ImageSignal, TrainConfig, build_field
        >>> gradient = np.linspace(0, 1, 16 * 16, dtype=np.float32).reshape(16, 16, 1)
        >>> signal = ImageSignal(gradient, name="gradient")
        >>> field = build_field("neurbf", signal.spec(), "10k")
        >>> field.initialize(signal)
        >>> result = fit(field, signal, TrainConfig(steps=20, eval_every=10, progress=False))
        >>> [entry["step"] for entry in result.history]
        [10, 20]
    """
    torch.set_flush_denormal(True)
    checkpoint_path = Path(run_dir) / CHECKPOINT_FILE if run_dir is not None else None
    # An interrupt before this point leaves any existing checkpoint untouched.
    optimizer, step, seconds, history = _start_or_resume(field, config, checkpoint_path, resume)

    saved_at = seconds  # training seconds at the last checkpoint
    first_step = step  # the first step's one-off temporaries (neighbour index builds) go back after it

    def save():
        nonlocal saved_at
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, field, optimizer, step, seconds, history, config)
            saved_at = seconds

    def finished() -> bool:
        return _run_progress(config, step, seconds) >= 1.0

    def record_evaluation():
        field.eval()
        metrics = signal.evaluate(field)
        field.train()
        history.append({"step": step, "seconds": round(seconds, 3), **metrics})
        if lines:
            print(progress_line(history[-1], config.steps), file=sys.stderr, flush=True)

    on_terminal = config.progress and sys.stderr.isatty()
    lines = config.progress and not on_terminal
    device = field_device(field)
    bar = _progress_bar(config, step, seconds, on_terminal)
    field.train()
    try:
        with DeferredInterrupts() as interrupts:
            while not finished():
                started = time.perf_counter()
                factor = cosine_factor(_run_progress(config, step, seconds), config.final_lr_fraction)
                for group in optimizer.param_groups:
                    group["lr"] = group["base_lr"] * factor
                generator = torch.Generator().manual_seed(config.seed * 1_000_003 + step)
                inputs, targets = to_device(signal.batch(step, generator), device)
                loss = signal.training_loss(field, inputs, targets)
                if not torch.isfinite(loss):
                    where = f"; the last good checkpoint is {checkpoint_path}" if checkpoint_path else ""
                    raise TrainingDiverged(
                        f"the loss became {loss.item()} at step {step}: training diverged{where}. "
                        "Check the input for NaNs or lower the learning rate."
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                signal.after_step(field, step)
                step += 1
                seconds += time.perf_counter() - started
                if step == first_step + 1:
                    return_freed_memory()
                loss_value = loss.item()
                _advance(bar, config, step, seconds)
                numbers = {k: f"{v:.2f}" for k, v in signal.progress(loss_value).items()}
                steps_taken = {} if config.steps is not None else {"step": step}
                bar.set_postfix({**steps_taken, "loss": f"{loss_value:.3g}", **numbers})
                if config.eval_every and step % config.eval_every == 0:
                    record_evaluation()
                if (config.checkpoint_every and step % config.checkpoint_every == 0) or (
                    config.checkpoint_seconds and seconds - saved_at >= config.checkpoint_seconds
                ):
                    save()
                if interrupts.requested:
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        bar.close()
        save()
        raise
    bar.close()
    if not history or history[-1]["step"] != step:
        record_evaluation()
    save()
    field.eval()
    return FitResult(steps=step, seconds=seconds, history=history)


def _progress_bar(config: TrainConfig, step: int, seconds: float, on_terminal: bool) -> tqdm:
    """A bar over the steps, or with a time budget alone over its seconds, so
    either way it shows the time left; off a terminal it is disabled (one line per evaluation instead)."""
    options = {"disable": not on_terminal, "dynamic_ncols": True, "leave": False}
    if config.steps is not None:
        return tqdm(total=config.steps, initial=step, unit="step", **options)
    bar_format = "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"
    return tqdm(total=config.time_budget, initial=seconds, unit="s", bar_format=bar_format, **options)


def _advance(bar: tqdm, config: TrainConfig, step: int, seconds: float) -> None:
    """Move the bar to ``step`` (steps mode) or to ``seconds`` (time mode, the step count in the postfix)."""
    if config.steps is not None:
        bar.update(step - bar.n)
    else:
        bar.update(min(seconds, config.time_budget) - bar.n)


def field_device(field: torch.nn.Module) -> torch.device:
    """The device of a field's parameters (the CPU for a field without any)."""
    return next((p.device for p in field.parameters()), torch.device("cpu"))


def to_device(value, device: torch.device):
    """Tensors in ``value`` (a tensor, or tuples and named tuples of them) on ``device``: signals draw
    batches on the CPU; a field on another device gets them there."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, tuple):
        moved = [to_device(item, device) for item in value]
        return type(value)(*moved) if hasattr(value, "_fields") else tuple(moved)
    return value


def progress_line(entry: dict, steps: int | None) -> str:
    """One evaluation as a line of plain text, e.g. "step 250/2000, 12.3 s: psnr 31.20"."""
    total = f"/{steps}" if steps is not None else ""
    numbers = ", ".join(
        f"{name} {value:.4g}" for name, value in entry.items() if name not in ("step", "seconds") and _is_number(value)
    )
    return f"step {entry['step']}{total}, {entry['seconds']:.1f} s: {numbers}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def initialize_and_fit(
    field: TrainableField,
    signal: Signal,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool,
    log=print,
    device: torch.device | str | None = None,
) -> FitResult:
    """:func:`fit`, after placing a new run's RBFs from the signal (a resumed run loads them).

    ``log`` receives a one-line note of how long the placement took. The placement runs on the CPU;
    then the field moves to ``device`` (None: where it is) for training. Memory each phase freed goes
    back to the OS before the next (:func:`rbfield.ops.return_freed_memory`).
    """
    init_seconds = 0.0
    if not resume:
        started = time.perf_counter()
        field.initialize(signal)
        init_seconds = time.perf_counter() - started
        if field.rbf_encodings():
            log(f"placed RBFs by weighted k-means in {init_seconds:.1f} s")
        return_freed_memory()
    if device is not None:
        field.to(device)
    result = fit(field, signal, config, run_dir=run_dir, resume=resume)
    return_freed_memory()
    result.init_seconds = init_seconds
    return result
