"""Audio to Face Motion and Combine Face Motion for the nodes: ComfyUI's AUDIO in and out, progress."""
from __future__ import annotations

import logging

import torch

from hellomeme_core.audio.combine import combine_motions
from hellomeme_core.audio.idle import idle_motion
from hellomeme_core.audio.motion import audio_to_face_motion, frame_count
from hellomeme_core.errors import HelloMemeError

from .progress import node_progress

_log = logging.getLogger("hellomeme")


def audio_samples(audio, name: str = "audio") -> tuple[torch.Tensor, int]:
    """ComfyUI AUDIO ``{"waveform": (B, C, T), "sample_rate": int}`` -> ((C, T) float tensor of the first item, rate)."""
    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise HelloMemeError(f"{name}: no audio. Connect Load Audio (or Load Driving Video's audio); "
                             "a video without a sound track gives none")
    waveform = torch.as_tensor(audio["waveform"])
    if waveform.dim() == 2:
        waveform = waveform[None]
    if waveform.dim() != 3 or waveform.shape[-1] == 0:
        raise HelloMemeError(f"{name}: the audio is empty or not shaped (batch, channels, samples) "
                             f"(got {tuple(waveform.shape)}); load the file again with Load Audio")
    if waveform.shape[0] > 1:
        _log.warning("HelloMeme Audio to Face Motion: the AUDIO holds %d clips; only the first is used", waveform.shape[0])
    return waveform[0].float(), int(audio["sample_rate"])


def audio_motion(audio, fps: float, method: str, strength: float, smoothing: float, transcript: str = ""):
    """``(FACE_MOTION, AUDIO trimmed to the motion's frames, summary)``; ``transcript``: the words spoken (optional)."""
    waveform, rate = audio_samples(audio)
    progress = node_progress(2)
    progress(0)
    motion, info = audio_to_face_motion(waveform.numpy(), rate, fps, method, strength, smoothing, transcript)
    progress(1)
    # The motion lasts frames / fps: the audio is cut (or padded with silence) to exactly that, so a video
    # made from the frames and this audio stays in sync to the end.
    samples = int(round(len(motion) / fps * rate))
    out = waveform[:, :samples]
    if out.shape[1] < samples:
        out = torch.nn.functional.pad(out, (0, samples - out.shape[1]))
    progress(2)
    _log.info("HelloMeme Audio to Face Motion: %s", info.summary())
    return motion, {"waveform": out[None].contiguous(), "sample_rate": rate}, info.summary()


def combine(mouth_motion, pose_motion=None, reference_motion=None, idle_seed: int = 0):
    """The pose motion (or an idle one as long as the mouth motion, around ``reference_motion``'s pose) with
    the mouth of ``mouth_motion``."""
    if mouth_motion is None:
        raise HelloMemeError("mouth_motion: connect Audio to Face Motion's face_motion")
    if pose_motion is None:
        fps = mouth_motion.fps or 8.0
        seconds = mouth_motion.extras.get("audio_seconds", len(mouth_motion) / fps)
        pose_motion = idle_motion(frame_count(seconds, fps), fps, idle_seed, base=reference_motion)
    if not mouth_motion.extras.get("mouth_from_audio"):
        _log.warning("HelloMeme Combine Face Motion: mouth_motion does not come from Audio to Face Motion; its mouth "
                     "coefficients are used all the same")
    return combine_motions(pose_motion, mouth_motion)


__all__ = ["audio_motion", "audio_samples", "combine"]
