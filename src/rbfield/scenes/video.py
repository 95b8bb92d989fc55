"""Videos of rendered frames: MP4 (H.264) through imageio-ffmpeg's bundled
ffmpeg when it is installed, otherwise an animated GIF through Pillow; either
is written atomically (:func:`rbfield.io.atomic_write_with`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from rbfield.io import atomic_write_bytes, atomic_write_with


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # not installed, or its binary is missing for this platform
        return False
    return True


def write_video(stem: str | Path, frames: np.ndarray, fps: int = 24) -> Path:
    """Write (N, H, W, 3) uint8 frames to ``stem.mp4``, or ``stem.gif`` without an encoder.

    Returns:
        The path written.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    if mp4_available():
        import imageio_ffmpeg

        # yuv420p needs even sizes: pad by edge replication.
        height, width = frames.shape[1:3]
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")

        def encode(temporary: Path) -> None:
            writer = imageio_ffmpeg.write_frames(
                str(temporary),
                (frames.shape[2], frames.shape[1]),
                fps=fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=2,
                quality=8,
            )
            writer.send(None)
            for frame in frames:
                writer.send(np.ascontiguousarray(frame))
            writer.close()

        path = stem.with_suffix(".mp4")
        atomic_write_with(path, encode)
        return path
    from PIL import Image

    path = stem.with_suffix(".gif")
    images = [Image.fromarray(frame) for frame in frames]
    gif = io.BytesIO()
    images[0].save(gif, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, gif.getvalue())
    return path
