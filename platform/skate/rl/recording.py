"""Rendered frames of an episode written to a file a person can watch: ``.gif`` (Pillow) or ``.mp4``
(H.264 through PyAV, the ``video`` extra: ``pip install 'skate[video]'``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from skate.errors import SkateError

FORMATS = (".gif", ".mp4")


def check_recording_path(path: str | Path) -> Path:
    """``path`` as a Path, once its format is known to be writable here (before any episode is played).

    Raises:
        SkateError: the suffix is neither .gif nor .mp4, or .mp4 without PyAV installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise SkateError(f"--record writes {' or '.join(FORMATS)}; {path.name!r} is neither")
    if suffix == ".mp4":
        try:
            import av  # noqa: F401
        except ImportError:
            raise SkateError("--record *.mp4 needs PyAV: pip install 'skate[video]' (or record a .gif)") from None
    return path


def write_recording(frames: Sequence[np.ndarray | None], path: str | Path, *, fps: int = 30) -> Path:
    """Write ``frames`` (H x W x 3 uint8, as ``env.render()`` returns them) to ``path``; its suffix
    picks the format."""
    path = check_recording_path(path)
    images = [np.asarray(frame, dtype=np.uint8) for frame in frames if frame is not None]
    if not images:
        raise SkateError("the environment rendered no frames to record")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        _write_gif(images, path, fps=fps)
    else:
        _write_mp4(images, path, fps=fps)
    return path


def _write_gif(images: list[np.ndarray], path: Path, *, fps: int) -> None:
    from PIL import Image

    first, *rest = [Image.fromarray(image) for image in images]
    first.save(path, save_all=True, append_images=rest, duration=int(1000 / fps), loop=0)


def _write_mp4(images: list[np.ndarray], path: Path, *, fps: int) -> None:
    import av

    height, width = images[0].shape[:2]
    even_h, even_w = height + height % 2, width + width % 2  # yuv420p needs even sides
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
        for image in images:
            padded = np.zeros((even_h, even_w, 3), dtype=np.uint8)
            padded[:height, :width] = image[..., :3]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(padded, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder
