"""Video and image files in and out through imageio-ffmpeg / OpenCV."""
from __future__ import annotations

import numpy as np
import pytest

from hellomeme_core.errors import MediaError
from hellomeme_core.media import _video_header, exact_rate, read_image, read_media, read_video, video_header, write_video
from tests.face.media_cache import media_path


def test_driving_video_frames_fps_and_audio():
    c = read_video(media_path("driving/qie.mp4"))
    assert c.frames.shape == (38, 512, 512, 3) and c.frames.dtype == np.uint8
    assert c.fps == pytest.approx(15.0) and c.audio_path == str(media_path("driving/qie.mp4"))
    assert c.size == (512, 512)
    assert read_video(media_path("driving/qie.mp4"), max_frames=5).frames.shape[0] == 5


def test_variable_rate_video_reports_the_rate_its_frames_come_at():
    """amns.mp4 states 29.44 fps on average (what imageio-ffmpeg reports); ffmpeg delivers 30 fps (its tbr)."""
    path = media_path("driving/amns.mp4")
    header, _ = video_header(path)
    assert header.stated_fps == pytest.approx(29.44) and header.fps == 30.0 and header.has_audio
    c = read_video(path)
    assert c.fps == 30.0 and len(c.frames) == 106 and c.promised_frames == round(3.47 * 30)
    assert len(c.frames) / c.fps == pytest.approx(header.duration, abs=0.1)  # the rate that spans the clip
    # One extra ffmpeg run per file: a second read finds its header remembered.
    hits = _video_header.cache_info().hits
    assert read_video(path, max_frames=2).fps == 30.0 and _video_header.cache_info().hits == hits + 1


def test_rates_printed_rounded_are_made_exact(tmp_path):
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=32x32:r=30000/1001", "-frames:v", "5", "-c:v", "libx264", "-pix_fmt",
            "yuv420p", str(tmp_path / "ntsc.mp4"))
    assert read_video(tmp_path / "ntsc.mp4").fps == pytest.approx(30000 / 1001, abs=1e-12)
    assert exact_rate(23.98) == pytest.approx(24000 / 1001, abs=1e-12)
    assert exact_rate(59.94) == pytest.approx(60000 / 1001, abs=1e-12)
    assert [exact_rate(r) for r in (30.0, 29.44, 12.5, 15.0, 0.0)] == [30.0, 29.44, 12.5, 15.0, 0.0]


def test_images_any_format_to_rgb():
    png = read_media(media_path("reference/toon.png"))  # RGBA png: alpha dropped
    assert png.frames.shape == (1, 512, 512, 3) and png.fps == 0.0 and png.audio_path is None
    odd = read_image(media_path("driving/yao.jpg"))
    assert odd.frames.shape == (1, 513, 512, 3)


def test_write_mp4_with_the_source_audio_and_read_it_back(tmp_path):
    source = read_video(media_path("driving/qie.mp4"))
    out = write_video(tmp_path / "clip.mp4", source.frames[:15], source.fps, source.audio_path)
    back = read_video(out)
    assert back.frames.shape == (15, 512, 512, 3) and back.fps == pytest.approx(15.0)
    assert back.audio_path == str(out)
    # Lossy codec, but the same pictures.
    assert np.abs(back.frames.astype(int) - source.frames[:15]).mean() < 6


def test_write_odd_size_without_audio(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 33, 47, 3), dtype=np.uint8)
    back = read_video(write_video(tmp_path / "odd.mp4", frames, 10))
    assert back.frames.shape == (3, 34, 48, 3) and back.audio_path is None


@pytest.mark.parametrize("content", [b"", b"\x00" * 64, b"ftypisom" + bytes(range(256)) * 8])
def test_empty_or_corrupt_video_is_a_media_error(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(MediaError, match="broken.mp4"):
        read_video(path)


def test_missing_and_corrupt_images_are_media_errors(tmp_path):
    with pytest.raises(MediaError, match="does not exist"):
        read_media(tmp_path / "nope.png")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(MediaError, match="not a readable image"):
        read_media(bad)


def test_write_rejects_wrong_shapes(tmp_path):
    with pytest.raises(MediaError, match=r"\(F>0, H, W, 3\)"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8)), 10)


def _ffmpeg(*args: str) -> None:
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def truncated_video(tmp_path_factory):
    """qie.mp4 remuxed with its index at the front (+faststart), then cut to half its bytes: the header
    still promises 2.53 s at 15 fps (38 frames), the data holds about half of them."""
    folder = tmp_path_factory.mktemp("truncated")
    whole = folder / "faststart.mp4"
    _ffmpeg("-i", str(media_path("driving/qie.mp4")), "-c", "copy", "-movflags", "+faststart", str(whole))
    cut = folder / "truncated.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    return whole, cut


def test_truncated_faststart_video_is_a_clear_error(truncated_video):
    whole, cut = truncated_video
    intact = read_video(whole)
    assert intact.frames.shape[0] == 38 and intact.promised_frames == 38 and intact.warnings == []
    with pytest.raises(MediaError, match=r"truncated.mp4 decoded only \d+ of the 38 frames .*truncated or damaged"):
        read_video(cut)
    partial = read_video(cut, allow_partial=True)
    assert 5 < len(partial.frames) < 30 and "decoded only" in partial.warnings[0]
    np.testing.assert_array_equal(partial.frames, intact.frames[: len(partial.frames)])
    # Asking for fewer frames than the damaged part holds is fine.
    assert read_video(cut, max_frames=5).frames.shape[0] == 5


def test_header_longer_than_the_video_without_damage_is_only_a_warning(tmp_path):
    """One second of video muxed with 2.5 s of audio: the container duration counts the audio."""
    source = str(media_path("driving/qie.mp4"))
    path = tmp_path / "long_audio.mp4"
    _ffmpeg("-t", "1", "-i", source, "-i", source, "-map", "0:v", "-map", "1:a", "-c", "copy", str(path))
    c = read_video(path)
    assert len(c.frames) < 0.9 * c.promised_frames and "packets intact" in c.warnings[0]


def test_cli_stops_on_a_truncated_video_unless_allowed(truncated_video, tmp_path, capsys):
    from hellomeme_core.cli.main import main as cli

    _, cut = truncated_video
    assert cli(["motion", "--input", str(cut), "--out", str(tmp_path / "m.json")]) == 1
    assert "decoded only" in capsys.readouterr().err
    assert cli(["motion", "--input", str(cut), "--out", str(tmp_path / "m.json"), "--allow-partial"]) == 0
    captured = capsys.readouterr()
    assert "warning: media:" in captured.err and "decoded only" in captured.err
