"""Expression mode (Load HelloMeme Models): the control networks receive exactly the official inputs of the
mode: ``pd_fgc`` (cntrl2, the official default) -> the PD-FGC embedding and no coefficients; ``arkit`` (cntrl1)
-> coefficients + face parts and no PD-FGC; v1/v2 run only the one network of the mode.

Asserted on what each control network is called with (forward pre-hooks), through the real nodes.
"""
from __future__ import annotations

import pytest
import torch

from tests.nodes import _fixtures as fx
from tests.nodes.test_hm_nodes import comfy  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow  # a full-size SD1.5 UNet makes the reference: about a minute on 2 CPU cores

SIZE = 128
FRAMES = 2


@pytest.fixture(scope="module")
def hm_dir(tmp_path_factory, comfy):
    folder = tmp_path_factory.mktemp("hellomeme_models")
    for version in ("v1", "v5"):
        fx.write_version_files(folder, version, stage="image")
    with fx.hellomeme_folder(folder):
        yield folder


@pytest.fixture(scope="module")
def reference(comfy):
    from nodes.reference import HelloMemeReference

    model = fx.random_sd15_model(torch.bfloat16)
    image = torch.rand(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(7))
    texts = fx.text_conditioning(seed=5), fx.text_conditioning(seed=6)
    return model, HelloMemeReference.execute(model, fx.random_vae(), image, texts[0], texts[1]).result[0]


def _calls(hm_models) -> list[tuple[str, set[str], int]]:
    """Run-time record of every control network call: (class, names of the expression inputs given, frames)."""
    calls = []

    def hook(net):
        def record(module, args, kwargs):
            names = {"HMControlNet": ("condition", "drive_coeff", "face_parts"),
                     "HMV2ControlNet": ("condition", "drive_coeff", "face_parts"),
                     "HMControlNet2": ("condition", "emo_embedding"), "HMV2ControlNet2": ("condition", "emo_embedding")}
            given = dict(zip(names.get(net.official_class, ("condition",)), args)) | kwargs
            inputs = {k for k, v in given.items() if v is not None and k != "condition"}
            first = given["condition"]  # a projection takes the base's feature dict instead
            calls.append((net.official_class, inputs, int(first.shape[0]) if isinstance(first, torch.Tensor) else None))
        return record

    for net in hm_models.bundle.control_networks:
        net.register_forward_pre_hook(hook(net), with_kwargs=True)
    return calls


def _apply(version, mode, reference, motion):
    from nodes.apply import ApplyHelloMeme
    from nodes.models import LoadHelloMemeModels

    model, hm_reference = reference
    hm_models = LoadHelloMemeModels.execute(version, "bf16", mode).result[0]
    assert hm_models.expression_mode == mode
    calls = _calls(hm_models)
    patched = ApplyHelloMeme.execute(model, hm_models, hm_reference, fx.condition_images(FRAMES, SIZE), motion).result[0]
    assert patched is not model
    return calls


def test_v5_pd_fgc_feeds_only_the_embedding(hm_dir, reference):
    calls = _apply("v5", "pd_fgc", reference, fx.face_motion(FRAMES, face_parts=True))
    base = [c for c in calls if c[0] == "HM5ControlNetBase"]
    # one call for the driving frames (a chunk) and one for the official unconditional input
    assert [c[1] for c in base] == [{"emo_embedding"}, {"emo_embedding"}]
    assert [c[2] for c in base] == [FRAMES, 1]


def test_v5_arkit_feeds_coefficients_and_face_parts(hm_dir, reference):
    calls = _apply("v5", "arkit", reference, fx.face_motion(FRAMES, face_parts=True))
    base = [c for c in calls if c[0] == "HM5ControlNetBase"]
    assert [c[1] for c in base] == [{"drive_coeff", "face_parts"}, {"drive_coeff", "face_parts"}]


@pytest.mark.parametrize("mode, net, inputs", [("pd_fgc", "HMControlNet2", {"emo_embedding"}),
                                               ("arkit", "HMControlNet", {"drive_coeff", "face_parts"})])
def test_v1_runs_the_one_net_of_the_mode(hm_dir, reference, mode, net, inputs):
    calls = _apply("v1", mode, reference, fx.face_motion(FRAMES, face_parts=True))
    assert {c[0] for c in calls} == {net}, calls
    assert all(c[1] == inputs for c in calls)


def test_pd_fgc_without_embedding_names_the_fix(hm_dir, reference):
    with pytest.raises(Exception, match="Load Face Analyzer.*pd_fgc_motion.*arkit"):
        _apply("v5", "pd_fgc", reference, fx.face_motion(FRAMES, pd_fgc=False))


def test_arkit_without_face_parts_warns(hm_dir, reference, caplog):
    with caplog.at_level("WARNING", logger="hellomeme"):
        calls = _apply("v5", "arkit", reference, fx.face_motion(FRAMES))
    assert "CLIP vision" in caplog.text
    assert {"drive_coeff", "face_parts"} <= next(c[1] for c in calls if c[0] == "HM5ControlNetBase")


def test_auto_prefers_v5_for_video_and_v5c_for_one_image(tmp_path):
    from hellomeme_core.denoiser.loading import detect_version

    for version in ("v5", "v5c"):
        fx.write_version_files(tmp_path, version, stage="image")
    assert detect_version([tmp_path], "video") == "v5"
    assert detect_version([tmp_path], "image") == "v5c"
    (tmp_path / "pd_fgc_motion.safetensors").unlink()  # the official default expression encoder is required
    with pytest.raises(Exception, match="No complete HelloMeme version"):
        detect_version([tmp_path], "video")


def test_apply_repeats_the_reference_warning(hm_dir, reference, caplog):
    import dataclasses

    model, hm_reference = reference
    noted = dataclasses.replace(hm_reference, warnings=("the reference image is not the face crop",))
    with caplog.at_level("WARNING", logger="hellomeme"):
        _apply("v5", "pd_fgc", (model, noted), fx.face_motion(FRAMES))
    assert "Apply HelloMeme: the reference image is not the face crop" in caplog.text
