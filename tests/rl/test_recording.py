"""Recordings of an episode: GIF and MP4 files that hold every frame, and clear errors before playing."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skate.errors import SkateError
from skate.rl.recording import check_recording_path, write_recording


def _frames(count: int, height: int = 41, width: int = 63) -> list[np.ndarray]:
    """A white square moving right over a dark background: frames that differ from each other."""
    frames = []
    for i in range(count):
        frame = np.full((height, width, 3), 20, dtype=np.uint8)
        frame[10:20, 2 * i:2 * i + 10] = 255
        frames.append(frame)
    return frames


def test_a_gif_holds_every_frame(tmp_path: Path) -> None:
    path = write_recording(_frames(12), tmp_path / "sub" / "episode.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 12 and gif.size == (63, 41)


def test_an_mp4_holds_every_frame_in_h264_padded_to_even_sides(tmp_path: Path) -> None:
    import av

    frames = _frames(15)
    path = write_recording([*frames[:5], None, *frames[5:]], tmp_path / "episode.MP4")  # a None frame is skipped
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert stream.codec_context.name == "h264"
    assert len(decoded) == 15 and decoded[0].shape == (42, 64, 3)
    # lossy, but the square is where it was drawn: bright inside, dark outside
    assert decoded[7][12:18, 16:22].mean() > 200 and decoded[7][30:40, 40:60].mean() < 60


@pytest.mark.parametrize("name", ["episode.avi", "episode"])
def test_an_unknown_format_is_refused_by_name(name: str) -> None:
    with pytest.raises(SkateError, match=rf"\.gif or \.mp4; '{name}' is neither"):
        check_recording_path(name)


def test_mp4_without_pyav_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_av(name: str, *args: object, **kwargs: object) -> object:
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(SkateError, match=r"pip install 'skate\[video\]'"):
        check_recording_path("episode.mp4")
    check_recording_path("episode.gif")  # GIF needs only Pillow


def test_nothing_rendered_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SkateError, match="rendered no frames"):
        write_recording([None, None], tmp_path / "episode.gif")
