"""The fixtures are what espeak-ng makes (skipped without it) and the CLI's --audio."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.audio import make_speech
from tests.audio.speech import DATA, speech, truth


def test_fixtures_are_small_16k_mono():
    for name, record in truth().items():
        samples, rate = speech(name)
        assert rate == 16000 and (DATA / record["wav"]).stat().st_size < 200_000
        lead = int(record["lead_silence"] * rate)
        assert not samples[:lead].any() and np.abs(samples).max() > 0.1
        assert record["vowel_centres"] == sorted(record["vowel_centres"])


@pytest.mark.skipif(make_speech.espeak_library() is None, reason="libespeak-ng is not installed (apt install espeak-ng)")
def test_ground_truth_is_espeak_ngs_own_phoneme_times():
    """Synthesising again gives the same phoneme events (times in ms from the synthesiser) as stored."""
    voice, speed, text = make_speech.FIXTURES["en_bilabials"]
    _, _, phonemes = make_speech.synthesise(text, voice, speed)
    record = truth()["en_bilabials"]
    lead = record["lead_silence"]
    starts = [t + lead for p, t in phonemes if p and not p.startswith(("_", "|"))]
    # espeak's event times move by up to ~11 ms between runs (they follow its internal buffers), so this is
    # also the ground truth's precision.
    np.testing.assert_allclose(starts, [r["start"] for r in record["phonemes"]], atol=0.015)


def test_cli_motion_from_audio(tmp_path, capsys):
    from hellomeme_core.cli.main import main

    out = tmp_path / "motion.npz"
    assert main(["motion", "--audio", str(DATA / "en_words.wav"), "--fps", "8", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["expression"].shape == (41, 51) and float(data["fps"]) == 8.0
    info = json.loads(str(data["info"]))
    assert info["method"] == "phonemes" and info["phone_source"] == "words aligned"
    assert "phonemes (words aligned)" in capsys.readouterr().out
    assert main(["motion", "--audio", str(DATA / "en_bilabials.wav"), "--transcript", truth()["en_bilabials"]["text"],
                 "--out", str(out)]) == 0
    assert json.loads(str(np.load(out)["info"]))["phone_source"] == "transcript aligned"
    assert "'phonemes (transcript aligned)'" in capsys.readouterr().out
    assert main(["motion", "--audio", str(DATA / "en_words.wav"), "--transcript", "hello zorblaxx", "--out", str(out)]) == 1
    assert "'zorblaxx'" in capsys.readouterr().err
    as_json = tmp_path / "motion.json"
    assert main(["motion", "--audio", str(DATA / "de_sentence.wav"), "--method", "loudness+formants",
                 "--out", str(as_json)]) == 0
    assert len(json.loads(as_json.read_text())["frames"]) == 24
    assert main(["motion", "--audio", str(tmp_path / "none.wav"), "--out", str(out)]) == 1
    assert "no file" in capsys.readouterr().err
