"""mediapipe's native log lines stay off the command line's stderr; our own output does not."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hellomeme_core.face.native_logs import is_native_noise, quiet_native_logs
from tests.face.media_cache import media_path

REPO = Path(__file__).resolve().parents[2]
# What a new user saw on every `motion` run before (mediapipe 0.10.21 on a CPU).
SEEN_NOISE = (
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "W0000 00:00:1796485060.907420    3909 inference_feedback_manager.cc:114] Feedback manager requires a model "
    "with a single signature inference. Disabling support for feedback tensors.\n",
    "W0000 00:00:1796485060.923975    3909 landmark_projection_calculator.cc:186] Using NORM_RECT without "
    "IMAGE_DIMENSIONS is only supported for the square ROI.\n",
    "I0000 00:00:1796485060.900000    3909 gl_context.cc:357] GL version: 3.2 (OpenGL ES 3.2 Mesa)\n",
)
NOISE_MARKERS = ("TfLite", "TensorFlow Lite", "absl", "W0000", "I0000", "inference_feedback_manager", "gl_context")


def test_noise_pattern_takes_the_native_info_and_warning_lines_only():
    assert all(is_native_noise(line) for line in SEEN_NOISE)
    for ours in ("warning: the video is truncated; using 10 of 12 frames\n", "error: no face found in the image.\n",
                 "E0000 00:00:1796485060.9 3909 calculator_graph.cc:887] a real mediapipe error\n",
                 "Traceback (most recent call last):\n"):
        assert not is_native_noise(ours), ours


def test_quiet_native_logs_drops_noise_and_writes_back_the_rest(capfd):
    with quiet_native_logs():
        for line in SEEN_NOISE:
            os.write(2, line.encode())
        os.write(2, b"native error line that is not noise\n")
        print("warning: our own", file=sys.stderr)
    err = capfd.readouterr().err
    assert "native error line that is not noise\n" in err and "warning: our own\n" in err
    assert not any(marker in err for marker in NOISE_MARKERS), err


def test_quiet_native_logs_writes_back_when_the_body_raises(capfd):
    try:
        with quiet_native_logs():
            os.write(2, SEEN_NOISE[0].encode() + b"kept before the error\n")
            raise KeyError("boom")
    except KeyError:
        pass
    err = capfd.readouterr().err
    assert err == "kept before the error\n"
    os.write(2, b"stderr is back\n")
    assert capfd.readouterr().err == "stderr is back\n"


def test_motion_command_stderr_has_no_mediapipe_noise(tmp_path):
    out = tmp_path / "motion.json"
    done = subprocess.run(
        [sys.executable, "-m", "hellomeme_core", "motion", "--input", str(media_path("driving/qie.mp4")),
         "--out", str(out), "--max-frames", "6"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(marker in done.stderr for marker in NOISE_MARKERS), done.stderr
    assert len(json.loads(out.read_text())["frames"]) == 6
    assert f"{out}: 6 frame(s)" in done.stdout
