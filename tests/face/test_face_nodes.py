"""The three face nodes called in-process with ComfyUI's own modules (CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.face.media_cache import clip
from tests.nodes._comfy import comfy_root


@pytest.fixture(scope="module")
def face_nodes():
    comfy_root()
    import nodes.face as face

    return face


def _images(relative: str, count: int | None = None, step: int = 1) -> torch.Tensor:
    frames = clip(relative).frames[::step][:count]
    return torch.from_numpy(frames.astype(np.float32) / 255.0)


def test_nodes_are_registered_with_tooltips(face_nodes):
    names = {cls.GET_SCHEMA().display_name for cls in face_nodes.NODES}
    assert names == {"Load Face Analyzer", "Extract Face Motion", "Render Pose Condition"}
    for cls in face_nodes.NODES:
        spec = cls.INPUT_TYPES()
        for group in spec.values():
            for name, (_, options) in group.items():
                assert options.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
        assert len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_TYPES)


def test_extract_and_render_on_a_driving_clip(face_nodes):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", False).result
    images = _images("driving/tbh.mp4", count=6, step=2)
    images[2] = 0.0  # a frame with no face
    motion, preview, missing, crop = face_nodes.ExtractFaceMotion.execute(analyzer, images, "hold", 0.3, 7.5).result
    assert crop.shape == (6, 512, 512, 3)
    assert missing == 1 and len(motion) == 6 and motion.face_found.tolist() == [True, True, False, True, True, True]
    assert preview.shape == images.shape and preview.dtype == torch.float32
    assert not torch.equal(preview, images)  # overlays drawn
    (ref_analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "cpu", False).result
    reference, _, _, _ = face_nodes.ExtractFaceMotion.execute(ref_analyzer, _images("reference/civitai1.jpg"), "hold", 0.0, 25.0).result
    condition, ref_condition = face_nodes.RenderPoseCondition.execute(motion, 0.5, True, reference).result
    assert condition.shape == (6, 512, 512, 3) and ref_condition.shape == (1, 512, 512, 3)
    assert set(torch.unique(condition).tolist()) == {0.0, 1.0}
    plain, _ = face_nodes.RenderPoseCondition.execute(motion, 0.0, False).result
    assert plain.shape == condition.shape


def test_extract_reports_dropped_frames(face_nodes, caplog):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", False).result
    images = _images("driving/tbh.mp4", count=6, step=2)
    images[[1, 4]] = 0.0  # two frames with no face
    with caplog.at_level("WARNING", logger="hellomeme"):
        motion, preview, missing, crop = face_nodes.ExtractFaceMotion.execute(analyzer, images, "drop", 0.0, 7.5).result
    assert missing == 2 and len(motion) == 4 and motion.frame_indices.tolist() == [0, 2, 3, 5]
    assert preview.shape[0] == 4 and crop.shape[0] == 4
    assert "2 of 6 frames had no face (frames 1, 4; dropped from the motion)" in caplog.text


def test_extract_error_policy_and_relative_without_reference(face_nodes):
    from hellomeme_core.errors import HelloMemeError, NoFaceError

    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", False).result
    blank = torch.zeros(2, 128, 128, 3)
    with pytest.raises(NoFaceError, match="no face"):
        face_nodes.ExtractFaceMotion.execute(analyzer, blank, "hold", 0.0, 25.0)
    motion, _, _, _ = face_nodes.ExtractFaceMotion.execute(analyzer, _images("reference/zzj.jpg"), "error", 0.0, 25.0).result
    with pytest.raises(HelloMemeError, match="reference_motion"):
        face_nodes.RenderPoseCondition.execute(motion, 0.0, True, None)


def test_official_backend_without_files_says_where_they_go(face_nodes):
    from hellomeme_core.errors import MissingModelFileError

    with pytest.raises(MissingModelFileError, match="models/hellomeme/hello_group_facemodel"):
        face_nodes.LoadFaceAnalyzer.execute("official", "cpu")


class _FakeClipVision:
    """Stands in for ComfyUI's CLIP vision wrapper: records the images, returns (N, 8) embeddings."""

    def __init__(self):
        self.seen = None

    def encode_image(self, image, crop=True):
        self.seen = image
        return {"image_embeds": image.mean(dim=(1, 2)).repeat(1, 3)[:, :8]}


def test_face_parts_through_clip_vision(face_nodes):
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", False).result
    fake = _FakeClipVision()
    motion, _, _, _ = face_nodes.ExtractFaceMotion.execute(analyzer, _images("driving/qie.mp4", count=3), "hold", 0.0, 15.0, fake).result
    assert fake.seen.shape == (9, 256, 256, 3) and 0.0 <= float(fake.seen.min()) and float(fake.seen.max()) <= 1.0
    assert motion.face_parts.shape == (3, 3, 8)


def _mediapipe_analyzer():
    """The FACE_ANALYZER object itself (what Load Face Analyzer outputs for mediapipe)."""
    from hellomeme_core.face.analyzer import load_face_analyzer

    return load_face_analyzer("mediapipe")


def test_extract_face_index_and_crop_size(face_nodes):
    from hellomeme_core.errors import NoFaceError
    from tests.face.test_face_choice import side_by_side

    # civitai1 small on the left, zzj larger on the right.
    image, middle = side_by_side(clip("reference/civitai1.jpg").frames[0], clip("reference/zzj.jpg").frames[0], 240, 320)
    images = torch.from_numpy(image[None].astype(np.float32) / 255.0)
    analyzer = _mediapipe_analyzer()
    extract = face_nodes.ExtractFaceMotion.execute
    sides = {}
    for face_index in (-1, 0, 1):
        motion, _, missing, crop = extract(analyzer, images, "hold", 0.0, 25.0, None, face_index, 256).result
        assert crop.shape == (1, 256, 256, 3) and missing == 0
        sides[face_index] = "left" if motion.landmarks[0, :, 0].max() < middle else "right"
    assert sides == {-1: "right", 0: "left", 1: "right"}
    motion, _, _, crop = extract(analyzer, images, "hold", 0.0, 25.0, face_index=0, crop_size=768).result
    assert crop.shape == (1, 768, 768, 3)
    with pytest.raises(NoFaceError, match="^Extract Face Motion: face_index 2 asks for the third face from the left, "
                                          "but at most 2 faces were found in any frame; use -1 for the largest face$"):
        extract(analyzer, images, "hold", 0.0, 25.0, face_index=2)


def test_extract_face_crop_thumbnail(face_nodes):
    portrait = _images("reference/civitai1.jpg")
    analyzer = _mediapipe_analyzer()
    extract = face_nodes.ExtractFaceMotion.execute
    motion, _, _, crop = extract(analyzer, portrait, "hold", 0.0, 25.0).result  # positional call, the old inputs
    thumbnail = motion.extras["face_crop_thumbnail"]
    assert thumbnail.shape == (3, 32, 32) and thumbnail.dtype == torch.float32
    assert 0.0 <= float(thumbnail.min()) and float(thumbnail.max()) <= 1.0
    # The first frame's face crop, area-averaged: 16 x 16 pixel blocks of the 512 crop.
    blocks = crop[0].reshape(32, 16, 32, 16, 3).mean(dim=(1, 3)).permute(2, 0, 1)
    torch.testing.assert_close(thumbnail, blocks, atol=1e-5, rtol=0)
    # The thumbnail tells the crop from another framing of the picture: on a portrait placed small and
    # off-centre, the crop at 768 gives the same thumbnail as at 512 (mean difference measured 0.0001-0.0004
    # over the six portraits), the centre crop scaled (ImageScale crop=center) a different one (0.10-0.20).
    from nodes.comfy_glue.face_motion import crop_thumbnail
    from tests.face.test_reference_crop import centre_crop, padded

    picture = padded("civitai1.jpg")
    pictures = torch.from_numpy(picture[None].astype(np.float32) / 255.0)
    at_512, _, _, _ = extract(analyzer, pictures, "hold", 0.0, 25.0).result
    at_768, _, _, _ = extract(analyzer, pictures, "hold", 0.0, 25.0, None, -1, 768).result
    official = at_512.extras["face_crop_thumbnail"]
    assert float((at_768.extras["face_crop_thumbnail"] - official).abs().mean()) < 0.002
    centred = crop_thumbnail(torch.from_numpy(centre_crop(picture).astype(np.float32) / 255.0))
    assert float((centred - official).abs().mean()) > 0.05
    # A driving clip's motion carries the thumbnail of its first kept frame.
    clip_motion, _, _, clip_crop = extract(analyzer, _images("driving/tbh.mp4", count=3), "drop", 0.0, 25.0).result
    torch.testing.assert_close(clip_motion.extras["face_crop_thumbnail"],
                               clip_crop[0].reshape(32, 16, 32, 16, 3).mean(dim=(1, 3)).permute(2, 0, 1), atol=1e-5, rtol=0)


def test_extract_checks_crop_size_and_face_index_at_queue_time(face_nodes):
    validate = face_nodes.ExtractFaceMotion.validate_inputs
    assert validate(crop_size=512, face_index=-1) is True and validate(crop_size=768, face_index=3) is True
    assert validate() is True  # linked or absent inputs are not checked here
    assert "crop_size 500 is not a multiple of 64" in validate(crop_size=500)
    assert "crop_size 64" in validate(crop_size=64)
    assert "face_index -2 is out of range" in validate(face_index=-2)
    inputs = face_nodes.ExtractFaceMotion.INPUT_TYPES()
    optional = inputs.get("optional", {})
    assert optional["face_index"][1]["default"] == -1 and optional["crop_size"][1]["default"] == 512
    assert optional["crop_size"][1]["min"] == 128 and optional["crop_size"][1]["step"] == 64
    tooltip = face_nodes.ExtractFaceMotion.OUTPUT_TOOLTIPS[3]
    assert tooltip.startswith("The official reference crop: feed this to HelloMeme Reference")


# ---- Load Face Analyzer: the PD-FGC expression embedding --------------------------------------------------------
@pytest.fixture
def hellomeme_dir(face_nodes, tmp_path, monkeypatch):
    """An empty models/hellomeme folder, the only one ComfyUI's folder_paths searches during the test."""
    import folder_paths

    import nodes.comfy_glue.paths  # noqa: F401  (registers the hellomeme folder)

    folder = tmp_path / "hellomeme"
    folder.mkdir()
    _, extensions = folder_paths.folder_names_and_paths["hellomeme"]
    monkeypatch.setitem(folder_paths.folder_names_and_paths, "hellomeme", ([str(folder)], extensions))
    return folder


def test_load_face_analyzer_pd_fgc_input(face_nodes):
    optional = face_nodes.LoadFaceAnalyzer.INPUT_TYPES()["optional"]
    kind, options = optional["pd_fgc"]
    # Optional with default on: saved workflows and API prompts without the widget load and get the official default.
    assert kind == "BOOLEAN" and options["default"] is True
    assert "official default expression input" in options["tooltip"] and "pd_fgc_motion" in options["tooltip"]


@pytest.mark.parametrize("backend", ["mediapipe", "official"])
def test_pd_fgc_on_gives_the_motion_pd_fpg(face_nodes, hellomeme_dir, backend):
    from tests.face import toolkit_models as tk
    from tests.support.official_weights import write_repo

    write_repo(hellomeme_dir, "songkey/pd_fgc_motion")  # pd_fgc_motion/diffusion_pytorch_model.safetensors
    if backend == "official":
        pytest.importorskip("onnx")
        tk.write_toolkit(hellomeme_dir / "hello_group_facemodel")
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute(backend, "auto").result  # pd_fgc left out: on
    assert analyzer.pd_fgc is not None and analyzer.pd_fgc.device == torch.device("cpu")  # ComfyUI runs with --cpu here
    motion, _, _, _ = face_nodes.ExtractFaceMotion.execute(analyzer, _images("driving/qie.mp4", count=2), "hold", 0.0,
                                                           25.0).result
    assert motion.pd_fpg.shape == (2, 548) and torch.isfinite(motion.pd_fpg).all()
    assert float((motion.pd_fpg[0] - motion.pd_fpg[1]).abs().max()) > 0  # per frame, not one constant
    assert motion.extras["neg_pd_fpg"].shape == (1, 548)
    (off,) = face_nodes.LoadFaceAnalyzer.execute(backend, "auto", False).result
    assert off.pd_fgc is None


def test_pd_fgc_on_without_the_file_says_how_to_get_it(face_nodes, hellomeme_dir, capsys):
    from hellomeme_core.cli.main import main as cli
    from hellomeme_core.errors import MissingModelFileError

    with pytest.raises(MissingModelFileError) as caught:
        face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", True)
    text = str(caught.value)
    expected = hellomeme_dir / "pd_fgc_motion" / "diffusion_pytorch_model.safetensors"
    assert text.startswith("Load Face Analyzer: pd_fgc is on but the PD-FGC expression encoder (songkey/pd_fgc_motion)")
    assert f"Put it at {expected} (or the single file pd_fgc_motion.safetensors there)" in text
    assert "python -m hellomeme_core download --id pd_fgc_motion" in text
    assert "Or turn pd_fgc off here and set expression_mode to 'arkit' in Load HelloMeme Models." in text
    # The command it names fetches exactly that file.
    assert cli(["download", "--id", "pd_fgc_motion", "--dry-run", "--models-dir", str(hellomeme_dir)]) == 0
    assert capsys.readouterr().out.startswith(f"{expected}  <-  ")
    # Off, nothing is needed.
    (analyzer,) = face_nodes.LoadFaceAnalyzer.execute("mediapipe", "auto", False).result
    assert analyzer.pd_fgc is None
