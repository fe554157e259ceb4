"""Load Driving Video called in-process with ComfyUI's own modules: schema, outputs, A/V sync, errors, and the
stock Create Video taking its outputs."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from tests.face.media_cache import media_path
from tests.nodes._comfy import comfy_root
from tests.test_driving_video import (FLASH_SECONDS, SYNC_RATE, ffmpeg_cut_offset, make_sync_clip, official_command,
                                      sync_offset_seconds)


@pytest.fixture(scope="module")
def input_dir(tmp_path_factory):
    """ComfyUI's input folder pointed at a temporary one holding a real clip, a sync clip, a silent clip and a
    text file (restored afterwards)."""
    comfy_root()
    import folder_paths

    folder = tmp_path_factory.mktemp("comfy_input")
    shutil.copy(media_path("driving/qie.mp4"), folder / "qie.mp4")
    make_sync_clip(folder / "sync.mp4")
    make_sync_clip(folder / "silent.mp4", audio=False)
    (folder / "notes.txt").write_text("not a video")
    data = (folder / "qie.mp4").read_bytes()
    (folder / "half.mp4").write_bytes(data[: len(data) // 2])
    before = folder_paths.get_input_directory()
    folder_paths.set_input_directory(str(folder))
    yield folder
    folder_paths.set_input_directory(before)


@pytest.fixture(scope="module")
def node(input_dir):
    from nodes.driving_video import LoadDrivingVideo

    return LoadDrivingVideo


def test_schema_lists_the_videos_with_upload_and_tooltips(node):
    schema = node.GET_SCHEMA()
    assert (schema.node_id, schema.display_name, schema.category) == ("HelloMemeLoadDrivingVideo", "Load Driving Video", "HelloMeme")
    required = node.INPUT_TYPES()["required"]
    kind, video = required["video"]
    assert kind == "COMBO" and video["video_upload"] is True
    assert video["options"] == ["half.mp4", "qie.mp4", "silent.mp4", "sync.mp4"]  # the text file is left out
    assert required["target_fps"][1]["default"] == 8.0 and required["target_fps"][1]["min"] == 0.0
    assert required["start_seconds"][1]["default"] == 0.0 and required["max_seconds"][1]["default"] == 0.0
    assert all(options.get("tooltip") for _, options in required.values())
    # The frame rule: last (saved widget orders stay valid), optional (older API prompts still run), official by default.
    assert list(node.INPUT_TYPES()["optional"]) == ["frame_selection", "max_side"]
    kind, selection = node.INPUT_TYPES()["optional"]["frame_selection"]
    assert kind == "COMBO" and selection["options"] == ["official (ffmpeg -r)", "nearest in time"]
    assert selection["default"] == "official (ffmpeg -r)"
    assert "0.14-0.20 s" in selection["tooltip"] and "does not lag the sound" in selection["tooltip"]
    assert [i.id for i in schema.inputs[-2:]] == ["frame_selection", "max_side"]  # appended: saved orders hold
    assert node.INPUT_TYPES()["optional"]["max_side"][1]["default"] == 0
    assert node.RETURN_TYPES == ["IMAGE", "AUDIO", "FLOAT", "INT"]
    assert node.RETURN_NAMES == ["images", "audio", "fps", "frame_count"] and all(node.OUTPUT_TOOLTIPS)


def test_outputs_have_comfyui_types_and_shapes(node, input_dir, tmp_path):
    # The default: the official pipeline's frames (ffmpeg -r 8 keeps 22 of qie's 38 frames at 15 fps).
    images, audio, fps, count = node.execute("qie.mp4", 8.0, 0.0, 0.0).result
    assert images.shape == (22, 512, 512, 3) and images.dtype == torch.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0 and float(images.max()) > 0.5
    assert fps == 8.0 and isinstance(fps, float) and count == 22 and isinstance(count, int)
    assert set(audio) == {"waveform", "sample_rate"} and audio["sample_rate"] == 44100
    assert audio["waveform"].shape == (1, 2, round(22 / 8 * 44100)) and audio["waveform"].dtype == torch.float32
    # The same pictures as the official command's (x264 crf 18 there, so up to its coding error).
    from hellomeme_core.media import read_video

    official_command(input_dir / "qie.mp4", tmp_path / "official.mp4")
    theirs = torch.from_numpy(read_video(tmp_path / "official.mp4").frames).float() / 255
    assert theirs.shape == images.shape and float((theirs - images).abs().mean()) < 0.02
    nearest, _, _, nearest_count = node.execute("qie.mp4", 8.0, 0.0, 0.0, "nearest in time").result
    assert nearest_count == 20 and float((theirs[:20] - nearest).abs().mean()) > 0.02
    _, _, own_fps, own_count = node.execute("qie.mp4", 0.0, 1.0, 1.0).result
    assert own_fps == 15.0 and own_count == 15


def test_clip_without_audio_gives_none_and_create_video_takes_it(node, tmp_path):
    from comfy_extras.nodes_video import CreateVideo

    from hellomeme_core.driving_video import probe
    from hellomeme_core.media import read_video

    images, audio, fps, count = node.execute("silent.mp4", 8.0, 0.0, 0.0).result
    assert audio is None and images.shape == (34, 64, 64, 3) and count == 34  # 4 s at 8 fps, + 2 by ffmpeg -r 8
    (video,) = CreateVideo.execute(images, fps, audio).result
    video.save_to(str(tmp_path / "silent_out.mp4"))
    assert len(read_video(tmp_path / "silent_out.mp4").frames) == 34 and not probe(tmp_path / "silent_out.mp4").has_audio
    # With audio: the saved video is 8 fps and carries the cut audio.
    images, audio, fps, count = node.execute("qie.mp4", 8.0, 0.5, 1.0).result
    (video,) = CreateVideo.execute(images, fps, audio).result
    video.save_to(str(tmp_path / "with_audio.mp4"))
    header = probe(tmp_path / "with_audio.mp4")
    assert header.fps == 8.0 and header.has_audio and len(read_video(tmp_path / "with_audio.mp4").frames) == count == 8


@pytest.mark.parametrize("selection", ["official (ffmpeg -r)", "nearest in time"])
def test_audio_and_pictures_stay_in_sync_through_the_node(node, input_dir, selection, record_property):
    start = 0.5
    images, audio, fps, count = node.execute("sync.mp4", 8.0, start, 0.0, selection).result
    assert audio["sample_rate"] == SYNC_RATE and audio["waveform"].shape[1] == 1
    assert audio["waveform"].shape[2] == round(count / fps * SYNC_RATE)  # the sound lasts as long as the pictures
    offset = sync_offset_seconds(images.numpy(), fps, audio["waveform"][0].numpy(), audio["sample_rate"])
    print(f"Load Driving Video, {selection}, 8 fps from {start} s: flash at {FLASH_SECONDS - start:.3f} s, "
          f"picture - sound onset = {offset * 1000:+.1f} ms")
    record_property("av_offset_ms", round(offset * 1000, 2))
    if selection == "nearest in time":
        assert count == round((4.0 - start) * 8) and abs(offset) < 1 / fps
    else:
        # As late as ffmpeg -r 8 shows it on the clip cut there: more than a frame after the sound.
        assert count == 30 and abs(offset - ffmpeg_cut_offset(input_dir / "sync.mp4", start)) < 0.01 and offset > 1 / fps


def test_errors_name_the_node_the_input_and_the_fix(node, input_dir):
    from hellomeme_core.errors import HelloMemeError, MediaError

    message = node.validate_inputs(video="gone.mp4")
    assert "Load Driving Video: video 'gone.mp4' was not found in ComfyUI's input folder" in message
    assert str(input_dir) in message
    assert node.validate_inputs(video="qie.mp4") is True and node.validate_inputs() is True
    with pytest.raises(MediaError, match=r"^Load Driving Video: video 'gone.mp4' was not found .*upload"):
        node.execute("gone.mp4", 8.0, 0.0, 0.0)
    with pytest.raises(MediaError, match=r"^Load Driving Video: media: ffmpeg cannot decode .*half\.mp4.*corrupt"):
        node.execute("half.mp4", 8.0, 0.0, 0.0)
    with pytest.raises(HelloMemeError, match=r"^Load Driving Video: target_fps 30 is above the clip's own frame rate \(15 fps\)"):
        node.execute("qie.mp4", 30.0, 0.0, 0.0)
    with pytest.raises(HelloMemeError, match=r"^Load Driving Video: start_seconds 5 .*its length is 2\.53 s"):
        node.execute("qie.mp4", 8.0, 5.0, 0.0)
    with pytest.raises(HelloMemeError, match=r"^Load Driving Video: frame_selection 'nearest' is not one of "
                                             r"'official \(ffmpeg -r\)', 'nearest in time'"):
        node.execute("qie.mp4", 8.0, 0.0, 0.0, "nearest")


def test_fingerprint_changes_with_the_file(node, input_dir):
    before = node.fingerprint_inputs(video="qie.mp4", target_fps=8.0)
    assert node.fingerprint_inputs(video="qie.mp4") == before
    path = input_dir / "qie.mp4"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert node.fingerprint_inputs(video="qie.mp4") != before
    assert node.fingerprint_inputs(video="gone.mp4") != node.fingerprint_inputs(video="qie.mp4")


def test_node_is_found_by_the_extension():
    comfy_root()
    import nodes

    assert "HelloMemeLoadDrivingVideo" in {cls.GET_SCHEMA().node_id for cls in nodes.node_classes()}


def test_progress_bar_follows_decoding_in_at_most_about_100_updates(node):
    import comfy.utils as comfy_utils

    from nodes.comfy_glue.driving_video import _throttled_progress

    calls: list[tuple[int, int]] = []
    comfy_utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        node.execute("qie.mp4", 8.0, 0.0, 0.0)
        decoded = list(calls)
        calls.clear()
        update = _throttled_progress()
        for done in range(1, 1001):
            update(done, 1000)
    finally:
        comfy_utils.set_progress_bar_global_hook(None)
    assert decoded[-1] == (38, 38) and [v for v, _ in decoded] == sorted(v for v, _ in decoded)
    assert len(calls) == 100 and calls[-1] == (1000, 1000)


def test_max_side_and_a_clip_too_large_for_memory(node, monkeypatch):
    import comfy.model_management
    import cv2
    import numpy as np

    from hellomeme_core.errors import HelloMemeError

    full = node.execute("qie.mp4", 8.0, 0.0, 0.0).result[0]
    small, _, _, count = node.execute("qie.mp4", 8.0, 0.0, 0.0, "official (ffmpeg -r)", 320).result
    assert small.shape == (22, 320, 320, 3) and count == 22
    # Each decoded frame area-filtered, as cv2 does it.
    decoded = (full * 255).round().to(torch.uint8).numpy()
    shrunk = np.stack([cv2.resize(frame, (320, 320), interpolation=cv2.INTER_AREA) for frame in decoded])
    assert torch.equal(torch.from_numpy(shrunk).float() / 255, small)
    # Free memory for 90 % of the full-size frames (uint8 decode + float32 image): refused before decoding, with a
    # max_side that fits; that one loads.
    free = int(0.9 * 22 * 512 * 512 * 3 * 5)
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *args, **kwargs: free)
    with pytest.raises(HelloMemeError) as caught:
        node.execute("qie.mp4", 8.0, 0.0, 0.0)
    message = str(caught.value)
    assert message.startswith("Load Driving Video: ") and "frames at 512x512 need" in message
    assert "or load a shorter part (max_seconds, start_seconds)" in message
    side = int(message.split("set max_side to ")[1].split()[0])
    assert 256 <= side < 512 and side % 64 == 0
    assert node.execute("qie.mp4", 8.0, 0.0, 0.0, "official (ffmpeg -r)", side).result[0].shape[1:3] == (side, side)
