"""The overview-and-crops comparison figure for large images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from raster_photos import degraded, mosaic
from rbfield.raster.overview import choose_crops, overview, save_overview
from rbfield.raster.store import PixelStore
from rbfield.signals.image import image_to_float


def test_overview_blocks_and_crops_find_the_error(tmp_path):
    photo = mosaic(900, 1400)
    store = PixelStore(photo)
    prediction = degraded(image_to_float(photo))
    prediction[610:650, 1000:1080] = 0.0  # a patch the "field" got badly wrong

    def predict(x, y, w, h):
        return prediction[y : y + h, x : x + w]

    target, shown, error, factor = overview(store, predict, max_side=200)
    assert factor == 7 and target.shape == (129, 200, 3) and error.shape == (129, 200)
    np.testing.assert_allclose(target[3, 5], photo[21:28, 35:42].reshape(-1, 3).mean(0) / 255, atol=1e-6)
    np.testing.assert_allclose(shown[-1, -1], prediction[896:, 1393:].reshape(-1, 3).mean(0), atol=1e-6)
    boxes = save_overview(tmp_path / "overview.png", store, predict, "test", max_side=200, crops=3, crop_side=128)
    assert boxes[0] == (636, 386, 128, 128)  # the centre comes first
    x, y, w, h = boxes[1]
    assert x <= 1000 and 1080 <= x + w and y <= 610 and 650 <= y + h
    width, height = Image.open(tmp_path / "overview.png").size
    assert width < 1400 and height < 2000


def test_crops_do_not_overlap_and_fit_small_images():
    error = np.zeros((20, 30))
    error[10, 10] = error[10, 11] = error[2, 25] = 1.0
    boxes = choose_crops(error, 4, 120, 80, count=3, side=32)
    for i, (x, y, w, h) in enumerate(boxes):
        assert 0 <= x and x + w <= 120 and 0 <= y and y + h <= 80 and (w, h) == (32, 32)
        for bx, by, bw, bh in boxes[i + 1 :]:
            assert x + w <= bx or bx + bw <= x or y + h <= by or by + bh <= y
    assert len(boxes) == 3 and choose_crops(error, 1, 20, 10, count=2, side=64)[0] == (0, 0, 20, 10)
