"""The trainer: end-to-end quality, determinism, resume, NaN guard, time budget; the chunked MLP."""

from __future__ import annotations

import os
import signal as signal_module

import pytest
import torch

from rbfield import ImageSignal, TrainConfig, TrainingDiverged, build_field, fit
from rbfield.decoders.chunked_mlp import chunk_rows, plain_mlp
from rbfield.decoders.mlp import MLP
from rbfield.errors import RbfieldError
from rbfield.train import cosine_factor


def _fit(signal, preset, budget, steps, run_dir=None, seed=0):
    field = build_field(preset, signal.spec(), budget, seed=seed)
    field.initialize(signal)
    result = fit(field, signal, TrainConfig(steps=steps, seed=seed, eval_every=steps, progress=False), run_dir=run_dir)
    return field, result


def test_neurbf_fits_a_real_photo_crop(coffee_crop):
    # 64x64 crop of a real photo, 24k parameters (~2 per value), 300 steps.
    signal = ImageSignal(coffee_crop)
    field, result = _fit(signal, "neurbf", "24k", 300)
    assert field.param_counts()["trainable"] <= 24_000
    assert result.history[-1]["psnr"] >= 38.0


def test_instant_ngp_fits_a_real_photo_crop(coffee_crop):
    signal = ImageSignal(coffee_crop)
    _, result = _fit(signal, "instant-ngp", "24k", 300)
    assert result.history[-1]["psnr"] >= 28.0


def test_same_seed_same_result(coffee_crop):
    signal = ImageSignal(coffee_crop)
    a, _ = _fit(signal, "neurbf", "16k", 20)
    b, _ = _fit(signal, "neurbf", "16k", 20)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


class _InterruptAt:
    """Wraps a signal and presses Ctrl-C when a given step's batch is asked for."""

    def __init__(self, signal, step):
        self.signal, self.step = signal, step

    def __getattr__(self, name):
        return getattr(self.signal, name)

    def batch(self, step, generator):
        if step == self.step:
            raise KeyboardInterrupt
        return self.signal.batch(step, generator)


def test_interrupt_then_resume_equals_uninterrupted(tmp_path, coffee_crop):
    # Random mini-batches, so the batch order must also survive the resume.
    signal = ImageSignal(coffee_crop, batch_size=1024)
    straight, _ = _fit(signal, "neurbf", "16k", 30)

    config = TrainConfig(steps=30, eval_every=10, progress=False)
    field = build_field("neurbf", signal.spec(), "16k")
    field.initialize(signal)
    with pytest.raises(KeyboardInterrupt):
        fit(field, _InterruptAt(signal, 17), config, run_dir=tmp_path)
    assert (tmp_path / "checkpoint.pt").exists()

    resumed = build_field("neurbf", signal.spec(), "16k")
    result = fit(resumed, signal, config, run_dir=tmp_path, resume=True)
    assert result.steps == 30
    for (name, x), (_, y) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=1e-5, msg=name)


class _SignalAt:
    """Wraps a signal and sends this process a real signal (Ctrl-C or SIGTERM)
    when a given step's batch is asked for, in the middle of that step."""

    def __init__(self, signal, step, signum):
        self.signal, self.step, self.signum = signal, step, signum

    def __getattr__(self, name):
        return getattr(self.signal, name)

    def batch(self, step, generator):
        if step == self.step:
            os.kill(os.getpid(), self.signum)
        return self.signal.batch(step, generator)


@pytest.mark.parametrize("signum", [signal_module.SIGINT, signal_module.SIGTERM])
def test_a_signal_mid_step_ends_that_step_then_saves(tmp_path, coffee_crop, signum):
    """The interrupt is taken after the step it arrived in (never inside a compiled
    kernel, where it used to surface as a SystemError with no checkpoint), and the
    process's own handlers are back afterwards."""
    signal = ImageSignal(coffee_crop, batch_size=1024)
    field = build_field("neurbf", signal.spec(), "16k")
    field.initialize(signal)
    pytest_sigterm = signal_module.signal(signal_module.SIGTERM, _raise_keyboard_interrupt)  # as the CLI does
    try:
        with pytest.raises(KeyboardInterrupt):
            fit(field, _SignalAt(signal, 7, signum), TrainConfig(steps=30, progress=False), run_dir=tmp_path)
        assert signal_module.getsignal(signal_module.SIGTERM) is _raise_keyboard_interrupt
        assert signal_module.getsignal(signal_module.SIGINT) is signal_module.default_int_handler
    finally:
        signal_module.signal(signal_module.SIGTERM, pytest_sigterm)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 8


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def test_nan_loss_stops_with_a_clear_error(coffee_crop):
    pixels = coffee_crop.copy()
    pixels[0, 5, 0] = float("nan")
    signal = ImageSignal(pixels)
    field = build_field("instant-ngp", signal.spec(), "24k")
    with pytest.raises(TrainingDiverged, match="loss became nan at step 0"):
        fit(field, signal, TrainConfig(steps=5, progress=False))


def test_time_budget_stops_training(coffee_crop):
    signal = ImageSignal(coffee_crop)
    field = build_field("instant-ngp", signal.spec(), "24k")
    result = fit(field, signal, TrainConfig(steps=None, time_budget=1.0, progress=False))
    assert 1.0 <= result.seconds < 3.0
    assert result.steps > 1


def test_eval_every_zero_evaluates_only_at_the_end(coffee_crop):
    signal = ImageSignal(coffee_crop)
    field = build_field("instant-ngp", signal.spec(), "24k")
    result = fit(field, signal, TrainConfig(steps=5, eval_every=0, progress=False))
    assert [entry["step"] for entry in result.history] == [5]
    with pytest.raises(RbfieldError, match="eval_every"):
        TrainConfig(steps=5, eval_every=-1)


def test_cosine_schedule_end_points():
    assert cosine_factor(0.0, 0.01) == pytest.approx(1.0)
    assert cosine_factor(0.5, 0.01) == pytest.approx(0.505)
    assert cosine_factor(1.0, 0.01) == pytest.approx(0.01)


@pytest.mark.parametrize("n_points", [0, 5, 3000, 9000])
@pytest.mark.parametrize("first_layer_frequencies", [None, (30.0, 300.0)])
@pytest.mark.usefixtures("fast_paths_on")
def test_chunked_mlp_matches_the_plain_layers_in_values_and_gradients(n_points, first_layer_frequencies):
    # 9000 rows span several chunks plus a partial one; 0 is an empty batch.
    torch.manual_seed(0)
    mlp = MLP(32, 3, width=64, n_layers=3, first_layer_frequencies=first_layer_frequencies).double()
    weights, biases = [layer.weight for layer in mlp.layers], [layer.bias for layer in mlp.layers]
    assert chunk_rows(64, 8) < 9000
    features = torch.randn(n_points, 32, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(n_points, 3, dtype=torch.float64)
    results = []
    for run in (lambda: mlp(features), lambda: plain_mlp(features, weights, biases, mlp.first_frequencies)):
        out = run()
        grads = torch.autograd.grad((out * upstream).sum(), [features, *weights, *biases])
        results.append((out, *grads))
    for chunked, plain in zip(*results):
        torch.testing.assert_close(chunked, plain, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("first_layer_frequencies", [None, (1.0, 8.0)])
@pytest.mark.usefixtures("fast_paths_on")
def test_chunked_mlp_supports_second_derivatives(first_layer_frequencies):
    torch.manual_seed(0)
    mlp = MLP(3, 1, width=16, n_layers=3, first_layer_frequencies=first_layer_frequencies).double()
    points = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    assert mlp._runs_chunked(points)
    assert torch.autograd.gradcheck(lambda p: mlp(p), (points,))
    assert torch.autograd.gradgradcheck(lambda p: mlp(p), (points,))
