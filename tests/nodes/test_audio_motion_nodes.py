"""Audio to Face Motion and Combine Face Motion called in-process (ComfyUI AUDIO in, FACE_MOTION out), and
Apply HelloMeme's refusal of an audio-made mouth in the pd_fgc expression mode."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.audio.speech import speech
from tests.nodes._comfy import comfy_root


@pytest.fixture(scope="module")
def audio_nodes():
    comfy_root()
    import nodes.audio_motion as module

    return module


def _audio(name: str = "en_words", channels: int = 2) -> dict:
    samples, rate = speech(name)
    waveform = torch.from_numpy(samples).float()[None, None].repeat(1, channels, 1)
    return {"waveform": waveform, "sample_rate": rate}


def test_nodes_have_tooltips(audio_nodes):
    for cls in audio_nodes.NODES:
        assert cls.GET_SCHEMA().node_id.startswith("HelloMeme")
        for group in cls.INPUT_TYPES().values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)
    assert "pd_fgc" in audio_nodes.CombineFaceMotion.GET_SCHEMA().description


def test_audio_to_motion_and_idle_combine(audio_nodes):
    audio = _audio()
    motion, trimmed, info = audio_nodes.AudioToFaceMotion.execute(audio, 8.0, "auto", 1.0, 0.5).result
    frames = len(motion)
    assert frames == round(5.11 * 8) and motion.fps == 8.0 and "phonemes" in info
    # The audio comes back exactly as long as the frames last, same samples, so a video stays in sync.
    assert trimmed["sample_rate"] == 16000 and trimmed["waveform"].shape == (1, 2, round(frames / 8 * 16000))
    assert torch.equal(trimmed["waveform"][0, :, :1000], audio["waveform"][0, :, :1000])
    assert motion.coefficient("jawOpen").max() > 0.3
    (combined,) = audio_nodes.CombineFaceMotion.execute(motion, None, None, 3).result
    assert len(combined) == frames and combined.extras["mouth_from_audio"]
    np.testing.assert_array_equal(combined.coefficient("jawOpen"), motion.coefficient("jawOpen"))
    assert np.degrees(np.abs(combined.angles)).max() > 0.5  # the idle head sways
    (again,) = audio_nodes.CombineFaceMotion.execute(motion, None, None, 3).result
    assert np.array_equal(again.angles, combined.angles)


def test_transcript_input(audio_nodes):
    from hellomeme_core.errors import HelloMemeError

    schema = audio_nodes.AudioToFaceMotion.INPUT_TYPES()
    assert list(schema["required"]) == ["audio", "fps", "method", "strength", "smoothing"]  # a shipped workflow uses them
    assert list(schema["optional"]) == ["transcript"] and schema["optional"]["transcript"][1]["default"] == ""
    motion, _, info = audio_nodes.AudioToFaceMotion.execute(_audio("en_bilabials"), 8.0, "auto", 1.0, 0.5,
                                                            "Mama, papa, baby. Bob, pop.").result
    assert "'phonemes (transcript aligned)'" in info and motion.extras["audio_method"] == "phonemes (transcript aligned)"
    with pytest.raises(HelloMemeError, match="^Audio to Face Motion: transcript: .*'zorblaxx'"):
        audio_nodes.AudioToFaceMotion.execute(_audio(), 8.0, "phonemes", 1.0, 0.5, "hello zorblaxx")


def test_clear_errors(audio_nodes):
    from hellomeme_core.errors import HelloMemeError

    with pytest.raises(HelloMemeError, match="^Audio to Face Motion: .*Load Audio"):
        audio_nodes.AudioToFaceMotion.execute(None)
    empty = {"waveform": torch.zeros(1, 1, 0), "sample_rate": 44100}
    with pytest.raises(HelloMemeError, match="^Audio to Face Motion: .*empty"):
        audio_nodes.AudioToFaceMotion.execute(empty)


def test_pd_fgc_mode_refuses_an_audio_mouth(audio_nodes):
    from hellomeme_core.errors import HelloMemeError
    from nodes.comfy_glue.inputs import motion_tensors

    motion, _, _ = audio_nodes.AudioToFaceMotion.execute(_audio("de_sentence", 1), 8.0, "loudness+formants").result
    (combined,) = audio_nodes.CombineFaceMotion.execute(motion).result
    combined.pd_fpg = torch.zeros(len(combined), 548)  # even with an embedding, pd_fgc cannot carry the audio
    with pytest.raises(HelloMemeError, match="pd_fgc' cannot take audio.*expression_mode to 'arkit' in Load HelloMeme Models"):
        motion_tensors(combined, len(combined), "Apply HelloMeme", "pd_fgc")
    tensors = motion_tensors(combined, len(combined), "Apply HelloMeme", "arkit")
    assert torch.equal(tensors["drive_coeff"], torch.from_numpy(combined.expression))
    assert tensors["pd_fpg"] is None
