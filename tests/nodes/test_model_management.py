"""HelloMeme networks under ComfyUI's model management, and the node API (V3 schemas, queue-time checks, progress).

On this CPU machine ComfyUI's compute device is the CPU; the same assertions hold on a GPU, where they
prove the networks run on the GPU (``comfy.model_management.get_torch_device()``), not on the offload device.
"""
from __future__ import annotations

import pytest
import torch

from tests.nodes import _fixtures as fx
# The SD1.5 MODEL, the v5 files, the loaded networks and the reference of the node tests, and their helpers.
from tests.nodes.test_hm_nodes import (  # noqa: F401  (fixtures)
    LAT, SIZE, VERSION, _apply, _sample, comfy, hm_dir, hm_models, model, reference, texts)

pytestmark = pytest.mark.slow  # full-size SD1.5 UNet on the CPU


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


class DeviceProbe:
    """Forward pre-hooks that record the device of each probed module's input."""

    def __init__(self, modules: dict[str, torch.nn.Module]):
        self.seen: dict[str, set] = {name: set() for name in modules}
        self.handles = [m.register_forward_pre_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def hook(module, args):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            tensors += [v for a in args if isinstance(a, dict) for v in a.values() if isinstance(v, torch.Tensor)]
            self.seen[name].add(tensors[0].device)
        return hook

    def close(self):
        for h in self.handles:
            h.remove()


def test_networks_are_comfyui_models_run_on_the_compute_device(comfy, model, hm_models, reference, texts):
    import comfy.model_management as mm

    from nodes.comfy_glue.managed_models import ADDITIONAL_MODELS_KEY, uncastable_parameters

    bundle = hm_models.bundle
    probe = DeviceProbe({"reference attention": bundle.reference_adapter.reference_modules_up[0],
                         "control base": bundle.control_networks[0], "control projection": bundle.control_networks[1]})
    try:
        patched = _apply(model, hm_models, reference, 2)  # runs the control networks
        out = _sample(comfy, patched, texts, 2)  # runs the reference attention inside the sampler
    finally:
        probe.close()
    compute = mm.get_torch_device()
    assert torch.isfinite(out).all()
    for name, devices in probe.seen.items():
        assert devices == {compute}, f"{name} ran on {devices}, not on ComfyUI's compute device {compute}"
    # The UNet modules travel with the MODEL as an additional model; the UNet itself does not carry them.
    assert patched.get_additional_models_with_key(ADDITIONAL_MODELS_KEY) == [hm_models.unet_modules]
    assert patched.model_size() == model.model_size()
    # ComfyUI's loaded-models list holds both HelloMeme models and accounts for their memory.
    loaded = {id(lm.model): lm for lm in mm.current_loaded_models if lm.model is not None}
    for patcher, networks in ((hm_models.unet_modules, hm_models.unet_modules.model),
                              (hm_models.control, hm_models.control.model)):
        assert id(patcher) in loaded, "a HelloMeme network is not in ComfyUI's loaded models"
        assert loaded[id(patcher)].model_memory() == _param_bytes(networks) + sum(
            b.numel() * b.element_size() for b in networks.buffers())
        assert {p.device for p in networks.parameters()} == {compute}
    # Every weight sits in a layer ComfyUI can offload and cast per call (low-VRAM modes).
    assert uncastable_parameters(hm_models.unet_modules.model) == []
    assert uncastable_parameters(hm_models.control.model) == []


def test_partial_load_casts_per_layer_and_gives_the_same_result(hm_models, reference):
    """What ComfyUI does in low-VRAM modes: weights stay on the offload device and each layer is cast to the
    compute device when it runs. The reference attention and the control networks give the same result."""
    from hellomeme_core.denoiser import BlockProgram, StepInputs
    from hellomeme_core.denoiser.bundle import compute_control_features

    g = torch.Generator().manual_seed(3)
    h = torch.randn(2, 1280, LAT // 4, LAT // 4, generator=g).to(torch.bfloat16)  # input of decoder block 1
    condition = fx.condition_images(2, SIZE).movedim(-1, 1) * 2 - 1
    coeffs = torch.rand(2, 51, generator=g)
    step = StepInputs(num_frames=1, reference={k: v for k, v in reference.features.items()})
    device = hm_models.compute_device()
    program = BlockProgram(hm_models.family, hm_models.image_modules(), compute_device=device)

    def run():
        out = program.before_decoder_block(1, h.to(device), step)
        cond, _ = compute_control_features(hm_models.bundle, condition, coeffs, compute_device=device)
        return out.cpu(), {k: v.cpu() for k, v in cond.items()}

    results = []
    for lowvram in (0, 1):  # full load; then nothing fits and every layer is offloaded
        for patcher in (hm_models.unet_modules, hm_models.control):
            patcher.detach()
            patcher.load(device, lowvram_model_memory=lowvram, full_load=lowvram == 0)
        castable = [m for p in (hm_models.unet_modules, hm_models.control) for m in p.model.modules()
                    if hasattr(m, "comfy_cast_weights")]
        assert all(m.comfy_cast_weights for m in castable) == bool(lowvram)
        results.append(run())
    for patcher in (hm_models.unet_modules, hm_models.control):
        patcher.detach()
    (full_out, full_ctrl), (part_out, part_ctrl) = results
    assert torch.equal(part_out, full_out) and not torch.equal(full_out, h)
    assert full_ctrl.keys() == part_ctrl.keys() and all(torch.equal(full_ctrl[k], part_ctrl[k]) for k in full_ctrl)


def test_inpainting_unet_is_refused_before_any_work(comfy):
    from hellomeme_core.errors import HelloMemeError
    from nodes.comfy_glue.inputs import check_sd15

    inpaint = fx.random_sd15_model(torch.bfloat16, in_channels=9)
    with pytest.raises(HelloMemeError, match="9 input channels.*inpainting"):
        check_sd15(inpaint, "Apply HelloMeme")


def test_auto_version_follows_the_files_and_says_which_ran(hm_dir, hm_models):
    from nodes.models import LoadHelloMemeModels

    before = LoadHelloMemeModels.fingerprint_inputs("auto", "bf16")
    assert before == LoadHelloMemeModels.fingerprint_inputs("auto", "bf16")  # stable while nothing changes
    assert before[0][0] == VERSION
    image_before = LoadHelloMemeModels.fingerprint_inputs("auto (single image)", "bf16")
    assert image_before[0][0] == VERSION  # the only complete version
    added = fx.write_version_files(hm_dir, "v5c", stage="image")
    try:
        # Videos: v5 stays first (v5c has no official video pipeline). One image: v5c, the official default.
        assert LoadHelloMemeModels.fingerprint_inputs("auto", "bf16")[0][0] == VERSION
        after = LoadHelloMemeModels.fingerprint_inputs("auto (single image)", "bf16")
        assert after != image_before and after[0][0] == "v5c"  # ComfyUI re-runs the loader, which now picks v5c
        output = LoadHelloMemeModels.execute("auto (single image)", "bf16")
        assert output.result[0].version == "v5c"
        assert output.ui.as_dict()["text"][0].startswith("HelloMeme v5c (bf16")
    finally:
        for path in added:
            if path.name.startswith("hm5c_"):
                path.unlink()
    assert LoadHelloMemeModels.fingerprint_inputs("auto", "bf16") == before


def test_queue_time_checks():
    from nodes.face import RenderPoseCondition
    from nodes.temporal import ApplyHelloMemeTemporal

    assert RenderPoseCondition.validate_inputs(size=512) is True
    assert "multiple of 64" in RenderPoseCondition.validate_inputs(size=160)
    assert RenderPoseCondition.validate_inputs() is True  # size linked from another node: checked at run time
    assert "smaller than window_length" in ApplyHelloMemeTemporal.validate_inputs(window_length=4, overlap=4)


def test_reference_of_odd_size_says_how_to_fix_it(comfy, model, texts):
    from hellomeme_core.errors import ShapeMismatchError
    from nodes.reference import HelloMemeReference

    with pytest.raises(ShapeMismatchError) as err:
        HelloMemeReference.execute(model, None, torch.rand(1, 100, 120, 3), texts[0], texts[1])
    message = str(err.value)
    assert message.startswith("HelloMeme Reference: the reference image is 120x100") and "512x512" in message
    assert "torch.Size" not in message and "(1, 100" not in message


def test_long_nodes_report_progress(comfy, model, hm_models, texts):
    """Load HelloMeme Models, HelloMeme Reference and Apply HelloMeme move the node's progress bar to the end."""
    import comfy.utils as comfy_utils  # not `import comfy.utils`: that would rebind the `comfy` fixture

    from nodes.models import LoadHelloMemeModels
    from nodes.reference import HelloMemeReference

    calls: list[tuple[int, int]] = []
    comfy_utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        def finished(run) -> bool:
            calls.clear()
            run()
            return bool(calls) and calls[-1][0] == calls[-1][1]

        assert finished(lambda: LoadHelloMemeModels.execute(VERSION, "bf16"))
        image = torch.rand(1, SIZE, SIZE, 3)
        assert finished(lambda: HelloMemeReference.execute(model, fx.random_vae(), image, texts[0], texts[1]))
        ref = HelloMemeReference.execute(model, fx.random_vae(), image, texts[0], texts[1]).result[0]
        assert finished(lambda: _apply(model, hm_models, ref, 3))
        assert calls[-1] == (3, 3)  # one step per driving frame
    finally:
        comfy_utils.set_progress_bar_global_hook(None)


def test_legacy_ids_are_deprecated_aliases_of_the_same_nodes(comfy):
    import nodes

    registered = {n.GET_SCHEMA().node_id: n for n in nodes.all_nodes()}
    assert all(node_id.startswith(nodes.ID_PREFIX) for node_id, n in registered.items() if not n.GET_SCHEMA().is_deprecated)
    for old, new in nodes.LEGACY_IDS.items():
        alias, current = registered[old], registered[new]
        assert alias.GET_SCHEMA().is_deprecated and not current.GET_SCHEMA().is_deprecated
        assert alias.INPUT_TYPES() == current.INPUT_TYPES() and alias.RETURN_TYPES == current.RETURN_TYPES
        assert alias.execute.__func__ is current.execute.__func__


def test_node_modules_hold_schemas_only_and_never_import_each_other():
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "nodes"
    node_modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    for path in folder.glob("*.py"):
        if path.stem == "__init__":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                target = (node.module or "").split(".")[0]
                assert target not in node_modules, f"nodes/{path.name} imports nodes/{target}.py"
                assert target in ("comfy_glue", ""), f"nodes/{path.name} imports .{node.module}"
        for node in tree.body:  # schemas only: classes, the NODES list, constants and imports
            assert isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.Assign, ast.Expr)), \
                f"nodes/{path.name}:{node.lineno} holds logic outside a node class"
    glue = folder / "comfy_glue"
    for path in glue.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                pytest.fail(f"nodes/comfy_glue/{path.name} imports a node module ({'.' * node.level}{node.module})")


def test_temporal_sampling_progress_only_moves_forward(comfy, model, hm_models, reference, texts):
    """The KSampler's bar counts steps; the temporal windows no longer report on it (it jumped back per window)."""
    import comfy.utils as comfy_utils  # not `import comfy.utils`: that would rebind the `comfy` fixture

    from nodes.temporal import ApplyHelloMemeTemporal

    temporal = ApplyHelloMemeTemporal.execute(_apply(model, hm_models, reference, 5), hm_models, 4, 2).result[0]
    calls: list[tuple[int, int]] = []
    comfy_utils.set_progress_bar_global_hook(lambda value, total, preview, node_id=None: calls.append((value, total)))
    try:
        _sample(comfy, temporal, texts, 5, steps=2)  # windows [0-3], [2-5]: two windows per step
    finally:
        comfy_utils.set_progress_bar_global_hook(None)
    assert calls and {total for _, total in calls} == {2}
    values = [value for value, _ in calls]
    assert values == sorted(values) and values[-1] == 2
