"""PSNR and SSIM with the stated settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import structural_similarity

from rbfield.metrics import psnr, ssim
from rbfield.signals.image import image_to_float


def test_psnr_exact_value():
    target = torch.zeros(10, 10, 3)
    prediction = torch.full((10, 10, 3), 0.5)  # MSE 0.25, exact in float32
    assert psnr(prediction, target) == pytest.approx(10 * np.log10(4.0), abs=1e-12)
    assert psnr(target, target) == float("inf")


@pytest.mark.parametrize("band_rows", [7, 256])
def test_ssim_matches_scikit_image_on_a_real_photo(band_rows):
    photo = image_to_float(data.astronaut()[100:260, 150:330])
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 0.05, photo.shape), 0, 1).astype(np.float32)
    expected = structural_similarity(
        photo, noisy, channel_axis=2, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    ours = ssim(torch.from_numpy(noisy), torch.from_numpy(photo), band_rows=band_rows)
    assert ours == pytest.approx(expected, abs=1e-6)
    assert ssim(torch.from_numpy(photo), torch.from_numpy(photo)) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("height, width", [(11, 11), (12, 43), (70, 33)])
def test_banded_blur_equals_direct_convolution(height, width):
    from rbfield.metrics import _blur, gaussian_window

    x = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(height))
    window = gaussian_window()
    direct = torch.nn.functional.conv2d(x.reshape(6, 1, height, width), window.view(1, 1, -1, 1))
    direct = torch.nn.functional.conv2d(direct, window.view(1, 1, 1, -1)).reshape(2, 3, height - 10, width - 10)
    assert torch.allclose(_blur(x, window), direct, rtol=0, atol=1e-14)
