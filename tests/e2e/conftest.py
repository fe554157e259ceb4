"""Inputs shared by the end-to-end tests: a short real driving clip (audio kept) and a reference portrait,
staged in the session server's input folder under the names the shared workflows use."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.e2e.media import cut_clip
from tests.e2e.workflow_graph import REPO_ROOT

MEDIA = REPO_ROOT.parent / "shared" / "media"
DRIVING_SOURCE = MEDIA / "driving" / "qie.mp4"
REFERENCE_SOURCE = MEDIA / "reference" / "show1.jpg"
SPEECH_SOURCE = REPO_ROOT / "tests" / "audio" / "data" / "en_words.wav"  # espeak-ng speech, 16 kHz mono, 5.1 s
# What the workflows in workflows/ load (LoadVideo "driving.mp4", LoadImage "reference.jpg", LoadAudio "speech.wav").
DRIVING_NAME = "driving.mp4"
REFERENCE_NAME = "reference.jpg"
SPEECH_NAME = "speech.wav"
# 24 frames keep the run short. The clip's 512 x 512 frames are shrunk to 224 x 224 and padded with grey
# to 448 x 512: a frame size other than the 512 x 512 condition size, and a face that leaves most of the
# frame free (the landmark preview must leave that part alone).
CLIP_FRAMES = 24
CLIP_SIZE = (448, 512)
CLIP_FILTER = "scale=224:224,pad=448:512:112:144:color=0x808080"
# The end-to-end tests' random SD1.5 checkpoint (~2 GB fp16), written once per session and shared by all.
E2E_CHECKPOINT = "hellomeme_e2e_random_sd15.safetensors"


@pytest.fixture(scope="session")
def driving_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 24 frames of a real driving video, shrunk and padded to 448 x 512, with its audio."""
    if not DRIVING_SOURCE.is_file():
        pytest.skip(f"shared media {DRIVING_SOURCE} is not present")
    return cut_clip(DRIVING_SOURCE, tmp_path_factory.mktemp("e2e_media") / DRIVING_NAME, CLIP_FRAMES, CLIP_FILTER)


@pytest.fixture(scope="session")
def staged_inputs(comfy_server, driving_clip: Path) -> dict[str, Path]:
    """The driving clip, the reference portrait and the speech in the server's input folder (names as in workflows/)."""
    if not REFERENCE_SOURCE.is_file():
        pytest.skip(f"shared media {REFERENCE_SOURCE} is not present")
    driving = comfy_server.input_dir / DRIVING_NAME
    reference = comfy_server.input_dir / REFERENCE_NAME
    shutil.copyfile(driving_clip, driving)
    shutil.copyfile(REFERENCE_SOURCE, reference)
    speech = comfy_server.input_dir / SPEECH_NAME
    shutil.copyfile(SPEECH_SOURCE, speech)
    return {"driving": driving, "reference": reference, "speech": speech}


def drop_execution_cache(server) -> None:
    """Make the server forget cached node outputs, so the next prompt really executes every node
    (another test of the session may have run the same graph on the same inputs).

    ``/free`` only sets a flag that ComfyUI's prompt worker acts on at the end of a loop turn; running one
    tiny prompt afterwards guarantees the reset happened before the next prompt is taken from the queue.
    """
    server.post_json("/free", {"free_memory": True})
    server.run_prompt({"1": {"class_type": "HelloMemeModelFiles", "inputs": {"version": "v5", "include_toolkit": False}}},
                      timeout=60)


def cached_nodes(history_entry: dict) -> list[str]:
    """Node ids a finished prompt took from the execution cache instead of running them."""
    return [n for m in history_entry["status"]["messages"] if m[0] == "execution_cached" for n in m[1]["nodes"]]


def e2e_checkpoint(server) -> Path:
    """The random SD1.5 checkpoint in the server's extra checkpoints folder, written on first use (in a child
    process, so its ~2 GB of tensors never stay in pytest's memory)."""
    from tests.support.sd15_checkpoint import write_in_subprocess

    checkpoint = server.extra_models_dir / "checkpoints" / E2E_CHECKPOINT
    if not checkpoint.is_file():
        write_in_subprocess(checkpoint, "float16")
    return checkpoint


def stage_meme_files(server) -> list[Path]:
    """What the shipped meme workflows load, in the server's model folders: the random checkpoint and the v5 files
    in the official layout (linked from the session's weight store). Returns the v5 weight files."""
    from tests.support.official_weights import write_version

    e2e_checkpoint(server)
    return write_version(server.hellomeme_models_dir, "v5", stage="video", dtype=torch.float16)
