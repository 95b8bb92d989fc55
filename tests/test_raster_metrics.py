"""Tile-by-tile PSNR/SSIM equal the whole-image metrics; the fixed-subset PSNR."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from raster_photos import degraded, mosaic
from rbfield import build_field
from rbfield.metrics import psnr, ssim
from rbfield.raster.grid import field_predictor
from rbfield.raster.store import PixelStore
from rbfield.raster.tiled_metrics import PixelSubset, tiled_metrics
from rbfield.signals.image import ImageSignal, image_to_float, reconstruct


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mosaic(233, 347)


@pytest.mark.parametrize("tile", [16, 100, 512])
def test_tiled_metrics_equal_whole_image_metrics(photo, tile):
    target = image_to_float(photo)
    prediction = degraded(target)
    expected_psnr = psnr(torch.from_numpy(prediction), torch.from_numpy(target))
    expected_ssim = ssim(torch.from_numpy(prediction), torch.from_numpy(target))
    calls = []

    def predict(x, y, w, h):
        calls.append((w, h))
        return prediction[y : y + h, x : x + w]

    metrics = tiled_metrics(PixelStore(photo), predict, tile=tile)
    assert metrics["psnr"] == pytest.approx(expected_psnr, rel=1e-12)
    assert metrics["ssim"] == pytest.approx(expected_ssim, rel=1e-9)
    assert max(w for w, _ in calls) <= tile + 10 and max(h for _, h in calls) <= tile + 10


def test_tiny_images_have_psnr_only(photo):
    small = photo[:9, :30]
    metrics = tiled_metrics(PixelStore(small), lambda x, y, w, h: image_to_float(small)[y : y + h, x : x + w] * 0.5)
    assert set(metrics) == {"psnr"} and np.isfinite(metrics["psnr"])


def test_field_metrics_match_final_metrics(photo):
    crop = photo[:64, :80]
    signal = ImageSignal(image_to_float(crop))
    field = build_field("neurbf", signal.spec(), "16k")
    field.initialize(signal)
    field.eval()
    whole, target = reconstruct(field, 80, 64).clamp(0, 1), torch.from_numpy(image_to_float(crop))
    expected = {"psnr": psnr(whole, target), "ssim": ssim(whole, target)}
    assert signal.final_metrics(field) == pytest.approx(expected, rel=1e-9)
    metrics = tiled_metrics(PixelStore(crop), field_predictor(field, 80, 64, points=2000), tile=40)
    assert metrics["psnr"] == pytest.approx(expected["psnr"], rel=1e-6)
    assert metrics["ssim"] == pytest.approx(expected["ssim"], rel=1e-6)


def test_subset_psnr(photo):
    store = PixelStore(photo)
    target = image_to_float(photo)
    noisy = torch.from_numpy(degraded(target))

    class Lookup(torch.nn.Module):
        """A 'field' that returns the degraded photo's pixel under each coordinate."""

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(1))

        def forward(self, coords):
            cols = (coords[:, 0] * photo.shape[1]).long()
            rows = (coords[:, 1] * photo.shape[0]).long()
            return noisy[rows, cols]

    full = psnr(noisy, torch.from_numpy(target))
    everything = PixelSubset(store, count=10**6)
    assert everything.coords.shape == (photo.shape[0] * photo.shape[1], 2)
    assert everything.psnr(Lookup()) == pytest.approx(full, rel=1e-9)
    subset = PixelSubset(store, count=4096, seed=1)
    assert len(torch.unique(subset.coords, dim=0)) == 4096
    assert subset.psnr(Lookup()) == pytest.approx(full, abs=0.3)
    assert torch.equal(PixelSubset(store, count=4096, seed=1).targets, subset.targets)
