"""Batches and RBF-placement samples drawn from a PixelStore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from skimage import data
from skimage.filters import sobel

from raster_photos import mosaic
from rbfield.encodings.rbf_init import weighted_kmeans
from rbfield.raster.sampling import importance_sample, random_batch, sobel_region, tiles
from rbfield.raster.store import PixelStore
from rbfield.signals.image import ImageSignal, image_to_float, pixel_centres


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mosaic(203, 317)


def test_batch_equals_the_image_signal_batch(photo):
    signal = ImageSignal(image_to_float(photo), batch_size=4096)
    store = PixelStore(photo)
    for step in range(3):
        expected = signal.batch(step, torch.Generator().manual_seed(step))
        coords, targets = random_batch(store, 4096, torch.Generator().manual_seed(step))
        assert torch.equal(coords, expected[0]) and torch.equal(targets, expected[1])


def test_batch_cost_does_not_grow_with_the_image():
    """A 100,000 x 100,000 image (one photo row repeated down, no memory of its own)
    gives batches at once, with indices beyond 32 bits: nothing is made per pixel."""
    row = np.tile(data.astronaut()[200], (196, 1))[:100_000]
    store = PixelStore(np.broadcast_to(row, (100_000, 100_000, 3)))
    coords, targets = random_batch(store, 2**16, torch.Generator().manual_seed(0))
    assert coords.shape == (2**16, 2) and coords.min() > 0 and coords.max() < 1
    rows = np.floor(coords[:, 1].double().numpy() * 100_000)
    cols = np.floor(coords[:, 0].double().numpy() * 100_000).astype(int)
    assert (rows * 100_000 + cols).max() > 2**32
    np.testing.assert_array_equal(targets.numpy(), row[cols].astype(np.float32) / 255)


@pytest.mark.parametrize("tile", [4, 64])  # 317 = 79 * 4 + 1: edge tiles one pixel wide
def test_sobel_tiles_equal_the_whole_image(photo, tile):
    store = PixelStore(photo)
    whole = sobel_region(store, 0, 0, store.width, store.height)
    stitched = np.empty_like(whole)
    for x, y, w, h in tiles(store.width, store.height, tile):
        stitched[y : y + h, x : x + w] = sobel_region(store, x, y, w, h)
    np.testing.assert_array_equal(stitched, whole)


def test_sobel_region_is_scikit_images_sobel_summed_over_channels(photo):
    store = PixelStore(photo)
    pixels = image_to_float(photo)
    expected = sum(sobel(pixels[:, :, c]) for c in range(3))
    ours = sobel_region(store, 0, 0, store.width, store.height)
    assert ours.dtype == np.float32
    # float32 rounding of magnitudes up to about 3: a few units in the last place
    np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_small_image_gives_every_pixel_with_its_whole_image_sobel_weight(photo, power):
    store = PixelStore(photo)
    points, weights, spacing = importance_sample(store, tile=50, power=power)
    whole = sobel_region(store, 0, 0, store.width, store.height)
    assert torch.equal(points, pixel_centres(317, 203)) and spacing == 1 / 317
    expected = torch.from_numpy(whole.reshape(-1)) ** power
    torch.testing.assert_close(weights, expected, rtol=1e-6, atol=0)


def test_signal_draws_a_sample_sized_by_the_kernels(photo, monkeypatch):
    """Above init_sample_size(n) pixels the signal hands k-means that many points, not every pixel."""
    monkeypatch.setattr("rbfield.raster.sampling.MAX_INIT_POINTS", 2**12)
    signal = ImageSignal(image_to_float(photo))
    points, weights, _ = signal.rbf_init_samples(100)
    assert points.shape == (6400, 2) and torch.equal(weights, torch.ones(6400))
    assert signal.rbf_init_samples(10)[0].shape == (2**12, 2)
    assert signal.rbf_init_samples(2000)[0].shape == (203 * 317, 2)


@pytest.mark.parametrize("power", [1.0, 0.5])
def test_bounded_sample_follows_the_gradient(photo, power):
    """Draw frequencies per tile match the tiles' share of the placement weight (plus the floor)."""
    store = PixelStore(photo)
    count = 2**15
    points, weights, spacing = importance_sample(store, max_points=count, seed=3, tile=64, power=power)
    assert points.shape == (count, 2) and torch.equal(weights, torch.ones(count))
    assert spacing == 1 / 317 and points.min() > 0 and points.max() < 1
    again, _, _ = importance_sample(store, max_points=count, seed=3, tile=64, power=power)
    assert torch.equal(points, again)
    magnitude = importance_sample(store, tile=64, power=power)[1].double().numpy().reshape(203, 317)
    magnitude = magnitude + 1e-3 * magnitude.mean()
    cols = (points[:, 0].double().numpy() * 317).astype(int) // 64
    rows = (points[:, 1].double().numpy() * 203).astype(int) // 64
    for x, y, w, h in tiles(317, 203, 64):
        share = magnitude[y : y + h, x : x + w].sum() / magnitude.sum()
        drawn = np.mean((rows == y // 64) & (cols == x // 64))
        assert abs(drawn - share) < 4 * np.sqrt(share * (1 - share) / count) + 1e-4


def test_kmeans_on_the_bounded_sample_places_rbfs_like_the_full_run():
    """Weighted k-means of 256 RBFs on a 384 x 384 photo: the objective over all pixels
    of the centres from a 2^14-point sample (64 per RBF) is within 8 % of the full run's,
    and its centres lie within 1.15x the distance at which two seeds of the full run
    place theirs (measured: 0.6 % and 1.09x; two full seeds differ by up to 8 % on
    three photos). Plain k-means of a uniform sample fails both (38 %, 1.71x)."""
    store = PixelStore(data.astronaut()[:384, 64:448])
    points, weights, spacing = (t.double().numpy() if torch.is_tensor(t) else t for t in importance_sample(store))
    weights = weights + 1e-3 * weights.mean()

    def objective(centres):
        distance, _ = cKDTree(centres).query(points)
        return (weights * distance**2).sum() / weights.sum()

    def distance_to(centres, reference):
        distance, _ = cKDTree(reference).query(centres)
        return distance.mean() / spacing

    full = weighted_kmeans(points, weights, 256, seed=0)[0]
    seed_spread = distance_to(weighted_kmeans(points, weights, 256, seed=1)[0], full)
    sample = importance_sample(store, max_points=2**14, seed=0)[0].double().numpy()
    sampled = weighted_kmeans(sample, np.ones(2**14) + 1e-3, 256, seed=0)[0]
    assert objective(sampled) < 1.08 * objective(full)
    assert distance_to(sampled, full) < 1.15 * seed_spread
    uniform = points[np.random.default_rng(0).integers(len(points), size=2**14)]
    plain = weighted_kmeans(uniform, np.ones(2**14), 256, seed=0)[0]
    assert objective(plain) > 1.08 * objective(full) and distance_to(plain, full) > 1.15 * seed_spread
