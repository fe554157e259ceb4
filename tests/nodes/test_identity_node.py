"""Identity Similarity, and Load Face Analyzer / Extract Face Motion with an insightface pack, called in-process
(generated pack with the real signatures, registered in ComfyUI's insightface folder)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from tests.face import insightface_models as M
from tests.face.media_cache import media_path
from tests.nodes._comfy import comfy_root

FACE = M.face_at((140, 120, 500, 560), 0.8, 32)


@pytest.fixture(scope="module")
def registered_pack(tmp_path_factory):
    comfy_root()
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401  (registers the insightface folder)

    root = tmp_path_factory.mktemp("insightface")
    M.write_pack(root / "models" / "antelopev2", [FACE], names=("scrfd_10g_bnkps.onnx", "glintr100.onnx"))
    paths = folder_paths.folder_names_and_paths["insightface"][0]
    paths.append(str(root))
    yield root
    paths.remove(str(root))


def _image(name: str) -> torch.Tensor:
    rgb = cv2.cvtColor(cv2.imread(str(media_path(f"reference/{name}"))), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(cv2.resize(rgb, (640, 640)).astype(np.float32) / 255.0)


def test_identity_node_values_plot_and_warning(registered_pack, caplog):
    import nodes.identity as identity

    cls = identity.HelloMemeIdentitySimilarity
    spec = cls.INPUT_TYPES()
    for group in (spec["required"], spec.get("optional", {})):
        for name, (_, options) in group.items():
            assert options.get("tooltip"), name
    assert "antelopev2" in spec["required"]["insightface_pack"][1]["options"]
    ref, other = _image("zzj.jpg"), _image("chillout.jpg")
    frames = torch.stack([ref, other, ref])
    with caplog.at_level("WARNING", logger="hellomeme"):
        out = cls.execute(ref[None], frames, "antelopev2", 0.9)
    mean, low, text, plot = out.result
    report = json.loads(text)
    assert report["values"][0] == pytest.approx(1.0, abs=1e-4) and report["values"][2] == pytest.approx(1.0, abs=1e-4)
    assert report["values"][1] < 0.9 and report["below_threshold"] == [1]
    assert low == pytest.approx(report["values"][1], abs=1e-4) and mean == pytest.approx(np.mean(report["values"]), abs=1e-4)
    assert plot.shape == (1, 320, 768, 3) and 0.0 <= float(plot.min()) and float(plot.max()) <= 1.0
    assert any("identity drifts: 1 frame(s) below the threshold 0.90" in r.getMessage() for r in caplog.records)
    assert "WARNING: identity drifts" in out.ui.as_dict()["text"][0]
    assert cls.validate_inputs(threshold=1.5) != True  # noqa: E712


def test_missing_pack_is_named_with_folder_and_files(registered_pack):
    import nodes.identity as identity
    from hellomeme_core.errors import MissingModelFileError

    with pytest.raises(MissingModelFileError) as err:
        identity.HelloMemeIdentitySimilarity.execute(_image("zzj.jpg")[None], _image("zzj.jpg")[None], "buffalo_l", 0.5)
    text = str(err.value)
    assert text.startswith("HelloMeme Identity Similarity:") and "buffalo_l" in text and "det_10g.onnx" in text
    assert str(registered_pack) in text


def test_face_nodes_with_the_insightface_pack(registered_pack):
    import nodes.face as face
    from hellomeme_core.errors import MissingModelFileError

    spec = face.LoadFaceAnalyzer.INPUT_TYPES()["optional"]
    assert spec["detector"][1]["options"] == ["built-in", "insightface"] and "antelopev2" in spec["insightface_pack"][1]["options"]
    (analyzer,) = face.LoadFaceAnalyzer.execute("mediapipe", "cpu", False, "insightface", "antelopev2").result
    assert analyzer.insightface.folder == registered_pack / "models" / "antelopev2"
    ref = _image("zzj.jpg")
    motion, _, missing, _ = face.ExtractFaceMotion.execute(analyzer, ref[None], "hold", 0.0, 25.0,
                                                           identity_image=ref[None]).result
    assert missing == 0
    centre = motion.landmarks[0].mean(0)
    assert 140 < centre[0] < 500 and 120 < centre[1] < 560  # inside the box the pack reported
    with pytest.raises(MissingModelFileError, match="Load Face Analyzer: .*buffalo_l"):
        face.LoadFaceAnalyzer.execute("mediapipe", "cpu", False, "insightface", "buffalo_l")
    # The built-in detector does not need the pack; asking for an identity then says why it is missing.
    (plain,) = face.LoadFaceAnalyzer.execute("mediapipe", "cpu", False, "built-in", "buffalo_l").result
    with pytest.raises(MissingModelFileError, match="Extract Face Motion: identity_image needs .*buffalo_l"):
        face.ExtractFaceMotion.execute(plain, ref[None], "hold", 0.0, 25.0, identity_image=ref[None])


def test_pack_combo_always_offers_the_known_packs(registered_pack):
    """A user with only another pack (here "my_pack") still validates the shipped workflows' "antelopev2"."""
    from nodes.comfy_glue.face_motion import insightface_pack_choices

    M.write_pack(registered_pack / "my_pack", [FACE])
    try:
        options, default = insightface_pack_choices()
    finally:
        import shutil

        shutil.rmtree(registered_pack / "my_pack")
    assert options == ["antelopev2", "buffalo_l", "my_pack"] and default == "antelopev2"
