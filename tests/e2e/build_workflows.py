"""Writes the shared workflows of ``workflows/`` (UI graph + API twin) from one description each.

The sockets and widget order come from a live server's ``/object_info``, so after a node gains or loses
an input or output, ``python -m tests.e2e.build_workflows`` rewrites both files consistently (the tests
in ``test_workflow_files.py`` say when that is needed). Layout, titles and notes are set here.
"""
from __future__ import annotations

import json
import sys
import tempfile
import uuid

from hellomeme_core.versions import OFFICIAL_PROMPT
from tests.e2e.workflow_graph import WORKFLOWS_DIR

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


SEED_NAMES = ("seed", "noise_seed")
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload")
OPTIONAL_SHAPE = 7  # litegraph's hollow socket, what the editor writes for optional inputs
VIEW = {"scale": 0.75, "offset": [160, 150]}


def _input_specs(object_info: dict, node_type: str) -> list[tuple[str, str, dict, bool]]:
    """(name, type, options, optional) of a node's inputs in the editor's order."""
    specs = []
    for section in ("required", "optional"):
        for name, spec in object_info[node_type]["input"].get(section, {}).items():
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            specs.append((name, kind, spec[1] if len(spec) > 1 else {}, section == "optional"))
    return specs


def _execution_order(nodes: list[dict]) -> list[int]:
    """Node ids with every node after the nodes it reads from (the editor's ``order`` field)."""
    by_id = {n["id"]: n for n in nodes}
    order: list[int] = []

    def visit(node_id: int) -> None:
        if node_id in order:
            return
        for source, _ in by_id[node_id].get("links", {}).values():
            visit(source)
        order.append(node_id)

    for node in nodes:
        visit(node["id"])
    return order


def build(object_info: dict, nodes: list[dict], groups: list, notes: list, name: str) -> tuple[dict, dict]:
    """(UI graph, API prompt) of one workflow description.

    ``nodes``: dicts with id, type, pos, size, optional title, ``values`` (widget values by input name;
    the input's default otherwise), ``links`` (input name -> (source id, output slot)) and optional ``meta``
    (extra ``_meta`` keys of the API file: the batch command's input/output markers).
    """
    links: list[list] = []
    links_from: dict[tuple[int, int], list[int]] = {}
    link_into: dict[tuple[int, str], int] = {}
    for node in nodes:
        for input_name, (source, slot) in node.get("links", {}).items():
            link_id = len(links) + 1
            source_type = next(n["type"] for n in nodes if n["id"] == source)
            links.append([link_id, source, slot, node["id"], input_name, object_info[source_type]["output"][slot]])
            links_from.setdefault((source, slot), []).append(link_id)
            link_into[(node["id"], input_name)] = link_id
    order = _execution_order(nodes)
    ui_nodes, api = [], {}
    for node in nodes:
        node_type = node["type"]
        inputs, widgets, api_inputs = [], [], {}
        upload = False
        for input_name, kind, options, optional in _input_specs(object_info, node_type):
            link_id = link_into.get((node["id"], input_name))
            is_widget = kind in WIDGET_TYPES
            if is_widget:
                value = node.get("values", {}).get(input_name, options.get("default"))
                if value is None and link_id is None:
                    raise ValueError(f"{name}: {node_type}.{input_name} needs a value")
                widgets.append(value)
                if kind == "INT" and (options.get("control_after_generate") or input_name in SEED_NAMES):
                    widgets.append("fixed")
                if any(options.get(flag) for flag in UPLOAD_FLAGS):
                    upload = True
                if link_id is None:
                    api_inputs[input_name] = value
            if link_id is not None:
                source, slot = node["links"][input_name]
                api_inputs[input_name] = [str(source), slot]
            if link_id is not None or not is_widget:
                socket = {"name": input_name, "type": kind, "link": link_id}
                if is_widget:
                    socket["widget"] = {"name": input_name}
                if optional:
                    socket["shape"] = OPTIONAL_SHAPE
                inputs.append(socket)
        if upload:
            widgets.append("image")  # the upload button's value: the editor adds that widget after all the others
        outputs = [{"name": output_name, "type": kind, "links": links_from.get((node["id"], slot)), "slot_index": slot}
                   for slot, (kind, output_name) in enumerate(zip(object_info[node_type]["output"], object_info[node_type]["output_name"]))]
        ui_node = {"id": node["id"], "type": node_type, "pos": list(node["pos"]), "size": list(node["size"]), "flags": {},
                   "order": order.index(node["id"]), "mode": 0, "inputs": inputs, "outputs": outputs,
                   "properties": {"Node name for S&R": node_type}, "widgets_values": widgets}
        if node.get("title"):
            ui_node["title"] = node["title"]
        ui_nodes.append(ui_node)
        api[str(node["id"])] = {"class_type": node_type, "inputs": api_inputs,
                                "_meta": {"title": node.get("title") or object_info[node_type]["display_name"],
                                          **node.get("meta", {})}}
    # A litegraph link names its target by socket index in the target's inputs list.
    sockets = {n["id"]: [i["name"] for i in n["inputs"]] for n in ui_nodes}
    for link in links:
        link[4] = sockets[link[3]].index(link[4])
    last_id = max(n["id"] for n in nodes)
    for text, pos, size in notes:
        last_id += 1
        ui_nodes.append({"id": last_id, "type": "MarkdownNote", "pos": list(pos), "size": list(size), "flags": {},
                         "order": len(ui_nodes), "mode": 0, "inputs": [], "outputs": [], "properties": {},
                         "widgets_values": [text], "color": "#432", "bgcolor": "#653"})
    ui = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, "hellomeme/" + name)), "revision": 0,
          "last_node_id": last_id, "last_link_id": len(links), "nodes": ui_nodes, "links": links,
          "groups": [{"id": i + 1, "title": title, "bounding": list(box), "color": colour, "font_size": 24, "flags": {}}
                     for i, (title, box, colour) in enumerate(groups)],
          "config": {}, "extra": {"ds": VIEW}, "version": 0.4}
    return ui, api


# --- the workflows ---------------------------------------------------------------------------------
BLUE, GREEN, PURPLE, BROWN = "#3f789e", "#8A8", "#a1309b", "#b58b2a"

MOTION_NOTE = """## HelloMeme: driving motion preview

Checks what HelloMeme will see in a driving video, in seconds and without any diffusion model.

1. **Load Driving Video**: upload your driving clip (a talking head; its audio is kept). It is resampled to **8 fps** as the official pipeline does (`target_fps` 0 keeps the clip's own rate).
2. **Load Face Analyzer**: `mediapipe` is built in (nothing to download). `official` uses the HelloMeme ONNX face toolkit placed in `ComfyUI/models/hellomeme`. `pd_fgc` (the official default expression input) needs `pd_fgc_motion` there; turn it off to preview without it.
3. **Extract Face Motion**: head pose + expression per frame. Raise *smoothing* against jitter (0 = raw, as officially). Frames without a face get a red border in the landmark preview.
4. **Render Pose Condition**: the coloured face square the HelloMeme control network is conditioned on (512 x 512, black background).
5. Queue. Two videos land in `output/hellomeme/`: `pose_condition_*.mp4` and `landmarks_*.mp4`, both with the driving audio.

Next step: `hellomeme_video.json` turns a portrait into the meme with this motion."""

motion_nodes = [
    dict(id=1, type="HelloMemeLoadDrivingVideo", title="Load Driving Video (8 fps)", pos=(30, 110), size=(330, 520),
         values={"video": "driving.mp4", "target_fps": 8.0, "start_seconds": 0.0, "max_seconds": 0.0}),
    dict(id=3, type="HelloMemeLoadFaceAnalyzer", pos=(400, 250), size=(280, 106),
         values={"backend": "mediapipe", "device": "auto", "pd_fgc": False}),  # the preview needs no download
    dict(id=4, type="HelloMemeExtractFaceMotion", pos=(720, 110), size=(320, 198),
         values={"no_face_policy": "hold", "smoothing": 0.0, "fps": 8.0}, links={"face_analyzer": (3, 0), "images": (1, 0), "fps": (1, 2)}),
    dict(id=5, type="HelloMemeRenderPoseCondition", pos=(720, 360), size=(320, 110),
         values={"translation_ratio": 0.5, "relative": False}, links={"face_motion": (4, 0)}),
    dict(id=6, type="CreateVideo", title="Create Video (pose condition)", pos=(1090, 110), size=(270, 80),
         values={"fps": 8.0}, links={"images": (5, 0), "fps": (1, 2), "audio": (1, 1)}),
    dict(id=7, type="SaveVideo", title="Save Video (pose condition)", pos=(1400, 110), size=(380, 460),
         values={"filename_prefix": "hellomeme/pose_condition", "format": "auto", "codec": "auto"}, links={"video": (6, 0)}),
    dict(id=8, type="CreateVideo", title="Create Video (landmarks)", pos=(1090, 620), size=(270, 80),
         values={"fps": 8.0}, links={"images": (4, 1), "fps": (1, 2), "audio": (1, 1)}),
    dict(id=9, type="SaveVideo", title="Save Video (landmarks)", pos=(1400, 620), size=(380, 460),
         values={"filename_prefix": "hellomeme/landmarks", "format": "auto", "codec": "auto"}, links={"video": (8, 0)}),
]
motion_groups = [
    ("1. Driving video", (20, 30, 680, 620), BLUE),
    ("2. Face motion", (700, 30, 360, 460), GREEN),
    ("3. Save (with the driving audio)", (1080, 30, 720, 1070), PURPLE),
]
motion_notes = [(MOTION_NOTE, (30, 680), (620, 420))]


VIDEO_NOTE = """## HelloMeme: portrait + driving video -> talking meme

Out of the box this graph computes what the official HelloMeme video pipeline computes (its defaults: 8 fps, the official face crop, PD-FGC expression, 25 steps, CFG 1.5, the official prompt, empty negative, translation ratio 0.5, v5 with DPM-Solver++ SDE).

**Files** (see `python -m hellomeme_core download --help` or `models_manifest.json`):
- the plain SD1.5 checkpoint `v1-5-pruned-emaonly.safetensors` in `models/checkpoints` (reference pass, prompts, VAE encoding, as the official "stylize x1");
- your SD1.5 checkpoint (any SD1.5 fine-tune, LoRAs too) as the denoiser: pick it in the second loader (leave plain SD1.5 there for the plain look);
- the HelloMeme files of one version in `models/hellomeme`, `pd_fgc_motion` included (check them with the *HelloMeme Model Files* node).

**Steps**
1. **Load Image**: the reference portrait, any size. **Extract Face Motion (reference)** cuts it to the official face crop (3x the face box, lifted) at the **generation size** (one number, bottom left: 512 as the official weights were trained); that crop is what HelloMeme sees.
2. **Load Driving Video**: the driving clip, resampled to 8 fps as officially; the result video uses that rate and the driving audio.
3. Face motion of both: the driving clip drives head pose and expression (PD-FGC embedding); the portrait's own motion places the pose square where its head is.
4. **HelloMeme Reference** encodes the crop once; **Apply HelloMeme** adds the per-frame control to your checkpoint; **Apply HelloMeme Temporal** adds the motion modules.
5. **HelloMeme Video Sampler** samples with the official schedule of the loaded version (v3-v5: 12-frame chunks at stride 11, boundary frames generated first one level deeper and turned into motion pads; v1/v2: a per-frame image stage, then 12-frame windows). Official sampler: dpmpp_2m_sde / sgm_uniform for v5 (default), euler / normal for v1-v4 (the log says when yours differs).
6. A stock **KSampler** in its place also works (same inputs): one pass with Apply HelloMeme Temporal's overlapping windows, which is not the official schedule.
7. Saved: `output/hellomeme/meme_*.mp4` (the 512 face crop, as officially) and, not in the official pipeline, `output/hellomeme/meme_full_*.mp4`: **HelloMeme Paste Back** puts each face back into the full portrait."""

video_nodes = [
    dict(id=1, type="CheckpointLoaderSimple", title="Load Checkpoint: plain SD1.5 (reference, prompts, VAE encode)",
         pos=(30, 110), size=(330, 100), values={"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
    dict(id=24, type="CheckpointLoaderSimple", title="Load Checkpoint: your SD1.5 model (denoiser, VAE decode)",
         pos=(30, 250), size=(330, 100), values={"ckpt_name": "v1-5-pruned-emaonly.safetensors"}),
    dict(id=2, type="CLIPTextEncode", title="Positive prompt (yours, then the official prompt)", pos=(30, 390), size=(330, 160),
         links={"clip": (1, 1)}, values={"text": OFFICIAL_PROMPT}, meta={"hellomeme_input": "prompt"}),
    dict(id=3, type="CLIPTextEncode", title="Negative prompt (empty, as officially)", pos=(30, 590), size=(330, 100),
         links={"clip": (1, 1)}, values={"text": ""}),
    dict(id=4, type="LoadImage", title="Load Image (reference portrait)", pos=(420, 110), size=(320, 360), values={"image": "reference.jpg"},
         meta={"hellomeme_input": "reference"}),
    dict(id=23, type="PrimitiveInt", title="Generation size (px, multiple of 64)", pos=(30, 1350), size=(330, 82),
         values={"value": 512}, meta={"hellomeme_input": "size"}),
    dict(id=6, type="HelloMemeLoadDrivingVideo", title="Load Driving Video (8 fps)", pos=(420, 520), size=(320, 560),
         values={"video": "driving.mp4", "target_fps": 8.0, "start_seconds": 0.0, "max_seconds": 0.0},
         meta={"hellomeme_input": ["driving", "fps"]}),
    dict(id=8, type="HelloMemeLoadFaceAnalyzer", pos=(800, 110), size=(280, 106), values={"backend": "mediapipe", "device": "auto"}),
    dict(id=9, type="HelloMemeExtractFaceMotion", title="Extract Face Motion (driving)", pos=(800, 260), size=(320, 198),
         values={"no_face_policy": "hold", "smoothing": 0.0, "fps": 8.0}, links={"face_analyzer": (8, 0), "images": (6, 0), "fps": (6, 2)}),
    dict(id=10, type="HelloMemeExtractFaceMotion", title="Extract Face Motion (reference: official crop)", pos=(800, 500), size=(320, 198),
         values={"no_face_policy": "error", "smoothing": 0.0, "fps": 8.0},
         links={"face_analyzer": (8, 0), "images": (4, 0), "crop_size": (23, 0)}),
    dict(id=11, type="HelloMemeRenderPoseCondition", pos=(800, 740), size=(320, 130),
         values={"translation_ratio": 0.5, "relative": False},
         links={"face_motion": (9, 0), "reference_motion": (10, 0), "size": (23, 0)}),
    dict(id=12, type="HelloMemeLoadModels", pos=(1180, 110), size=(300, 106),
         values={"version": "auto", "precision": "auto", "expression_mode": "pd_fgc"}, meta={"hellomeme_input": "version"}),
    dict(id=13, type="HelloMemeReference", pos=(1180, 260), size=(300, 170),
         links={"model": (1, 0), "vae": (1, 2), "image": (10, 3), "positive": (2, 0), "negative": (3, 0),
                "hm_models": (12, 0), "reference_condition": (11, 1), "reference_motion": (10, 0)}),
    dict(id=14, type="HelloMemeApply", pos=(1180, 480), size=(300, 130),
         links={"model": (24, 0), "hm_models": (12, 0), "hm_reference": (13, 0), "condition": (11, 0), "face_motion": (9, 0)}),
    dict(id=15, type="HelloMemeApplyTemporal", pos=(1540, 110), size=(320, 130),
         values={"window_length": 12, "overlap": 4},
         links={"model": (14, 0), "hm_models": (12, 0)}),
    dict(id=16, type="GetImageSize", title="Get Image Size (frame count)", pos=(1180, 660), size=(240, 90), links={"image": (11, 0)}),
    dict(id=17, type="EmptyLatentImage", title="Empty Latent (one per frame)", pos=(1180, 800), size=(270, 110),
         values={"width": 512, "height": 512, "batch_size": 1},
         links={"width": (16, 0), "height": (16, 1), "batch_size": (16, 2)}),
    dict(id=18, type="HelloMemeVideoSampler", pos=(1900, 110), size=(320, 270),
         values={"seed": 42, "steps": 25, "cfg": 1.5, "sampler_name": "dpmpp_2m_sde", "scheduler": "sgm_uniform", "denoise": 1.0},
         links={"model": (15, 0), "positive": (2, 0), "negative": (3, 0), "latent_image": (17, 0)},
         meta={"hellomeme_input": ["seed", "steps", "cfg"]}),
    dict(id=19, type="VAEDecode", pos=(1900, 430), size=(220, 50), links={"samples": (18, 0), "vae": (24, 2)}),
    dict(id=20, type="CreateVideo", pos=(1900, 530), size=(270, 80), values={"fps": 8.0},
         links={"images": (19, 0), "fps": (6, 2), "audio": (6, 1)}),
    dict(id=21, type="SaveVideo", pos=(2260, 110), size=(420, 520),
         values={"filename_prefix": "hellomeme/meme", "format": "auto", "codec": "auto"}, links={"video": (20, 0)},
         meta={"hellomeme_output": "main"}),
    dict(id=25, type="HelloMemePasteBack", pos=(1900, 680), size=(320, 130), values={"feather": 0.08, "color_match": True},
         links={"images": (19, 0), "reference_image": (4, 0), "reference_motion": (10, 0)}),
    dict(id=26, type="CreateVideo", title="Create Video (full picture)", pos=(1900, 860), size=(270, 80), values={"fps": 8.0},
         links={"images": (25, 0), "fps": (6, 2), "audio": (6, 1)}),
    dict(id=27, type="SaveVideo", title="Save Video (full picture)", pos=(2260, 680), size=(420, 520),
         values={"filename_prefix": "hellomeme/meme_full", "format": "auto", "codec": "auto"}, links={"video": (26, 0)},
         meta={"hellomeme_output": "full"}),
]
video_groups = [
    ("1. Models and prompts", (20, 30, 360, 680), BLUE),
    ("2. Portrait, driving clip", (410, 30, 340, 1070), BROWN),
    ("3. Face motion", (790, 30, 340, 850), GREEN),
    ("4. HelloMeme", (1170, 30, 320, 890), PURPLE),
    ("5. Temporal stage", (1530, 30, 340, 250), PURPLE),
    ("6. Sample, decode, save (face crop)", (1890, 30, 800, 610), BLUE),
    ("7. Paste back into the full portrait (beyond the official)", (1890, 650, 800, 560), BROWN),
]
video_notes = [(VIDEO_NOTE, (30, 740), (350, 600))]


UPPER_BODY_NOTE = """## HelloMeme + body and hands (stock ControlNet OpenPose)

The video workflow, plus the driving clip's body and hands through a stock **ControlNet OpenPose** model, next to HelloMeme's face control. Made for upper-body memes (head, shoulders, hands in the picture).

**Extra file**: `control_v11p_sd15_openpose.pth` (lllyasviel/ControlNet-v1-1) in `models/controlnet`.

1. **Extract Body Motion** (driving): mediapipe pose + hands (built in, CPU). Its preview shows the skeleton on the clip (red border: no person).
2. **Extract Body Motion** (reference crop): the reference person's proportions.
3. **Render Skeleton Condition**: one OpenPose image per frame at the generation size; the driving limbs drawn at the reference's lengths, face dots from the driving face motion.
4. **Apply ControlNet** puts it on the positive and negative prompts the sampler uses; lower *strength* if the body control fights the face."""

upper_body_nodes = [n for n in video_nodes if n["id"] != 18] + [
    dict(id=30, type="HelloMemeExtractBodyMotion", title="Extract Body Motion (driving)", pos=(800, 1250), size=(320, 200),
         values={"hands": True, "smoothing": 0.3, "no_person_policy": "hold", "min_confidence": 0.5, "fps": 8.0},
         links={"images": (6, 0), "fps": (6, 2)}),
    dict(id=31, type="HelloMemeExtractBodyMotion", title="Extract Body Motion (reference crop)", pos=(800, 1500), size=(320, 200),
         values={"hands": True, "smoothing": 0.0, "no_person_policy": "hold", "min_confidence": 0.5, "fps": 8.0},
         links={"images": (10, 3)}),
    dict(id=32, type="HelloMemeRenderSkeletonCondition", pos=(1180, 1250), size=(320, 170),
         values={"draw_hands": True, "draw_face": True},
         links={"body_motion": (30, 0), "width": (23, 0), "height": (23, 0), "face_motion": (9, 0), "reference_motion": (31, 0)}),
    dict(id=33, type="ControlNetLoader", pos=(1180, 1470), size=(320, 60),
         values={"control_net_name": "control_v11p_sd15_openpose.pth"}),
    dict(id=34, type="ControlNetApplyAdvanced", pos=(1540, 1250), size=(320, 190),
         values={"strength": 1.0, "start_percent": 0.0, "end_percent": 1.0},
         links={"positive": (2, 0), "negative": (3, 0), "control_net": (33, 0), "image": (32, 0)}),
    dict(next(n for n in video_nodes if n["id"] == 18), links={"model": (15, 0), "positive": (34, 0), "negative": (34, 1),
                                                              "latent_image": (17, 0)}),
]
upper_body_groups = video_groups + [("8. Body and hands: stock ControlNet OpenPose", (790, 1170, 1080, 560), GREEN)]
upper_body_notes = [(VIDEO_NOTE, (30, 740), (350, 600)), (UPPER_BODY_NOTE, (1540, 1480), (330, 240))]


TALKING_NOTE = """## HelloMeme: portrait + speech -> talking head (no driving video)

The video workflow with a **speech recording** in place of the driving clip. Beyond the official HelloMeme pipeline (which always needs a driving video).

1. **Load Audio**: your speech (wav, mp3, flac... or a video's sound track). The video lasts as long as the audio.
2. **Audio to Face Motion**: mouth and jaw shapes per frame at **8 fps**. `method` `auto` uses **phonemes** (offline en-US speech recognition, pocketsphinx: the most exact lip shapes) when the recognised phones cover at least half of the speech, else **loudness+formants** (any language or singing). The log (and the `info` output) says which was used.
3. **Combine Face Motion**: no pose input, so the head gets a gentle built-in **idle motion** (sway and blinks, `idle_seed`) around the portrait's own pose; the mouth comes from the audio. Connect an Extract Face Motion of a driving video to `pose_motion` for real head motion instead (and give that clip's fps everywhere).
4. **Load HelloMeme Models** must use `expression_mode` **arkit** (ARKit coefficients): the official default `pd_fgc` reads the expression from a driving video's PD-FGC embedding, which audio cannot make, and Apply HelloMeme refuses audio-made motion there. arkit also feeds CLIP eye/mouth embeddings: connect a CLIP vision loader (ViT-H) to *Extract Face Motion (reference)* for them (zeros without it, with a warning in the log). PD-FGC is off in Load Face Analyzer: nothing to download for it.
5. **Create Video** takes the audio from Audio to Face Motion: it is cut to exactly frames / 8 s, so sound and mouth stay in sync. Keep its fps equal to Audio to Face Motion's.
6. Saved: `output/hellomeme/talking_*.mp4` (the face crop) and `talking_full_*.mp4` (pasted back into the portrait), both with the speech."""
ARKIT_NOTE = """**Why arkit?** The mouth made from audio is ARKit coefficients. `pd_fgc` (the official default) would ignore them and use a driving video's PD-FGC embedding, so Apply HelloMeme stops with an error in that mode."""


def _video_node(node_id: int, **changes) -> dict:
    """A node of the video workflow with some of its fields changed."""
    return dict(next(n for n in video_nodes if n["id"] == node_id), **changes)


# The video workflow with speech in place of the driving clip: Load Driving Video (6) and Extract Face Motion
# (driving) (9) go; the combined motion (42) drives the pose condition and Apply HelloMeme; the audio of the videos
# is Audio to Face Motion's (cut to the frames). The batch command's "driving" job input is the speech file and its
# "fps" setting reaches every node that must share the rate.
TALKING_REPLACED = {6, 9, 8, 11, 12, 14, 20, 21, 26, 27}
talking_nodes = [n for n in video_nodes if n["id"] not in TALKING_REPLACED] + [
    dict(id=40, type="LoadAudio", title="Load Audio (speech)", pos=(420, 520), size=(320, 136),
         values={"audio": "speech.wav"}, meta={"hellomeme_input": {"driving": "audio"}}),
    dict(id=41, type="HelloMemeAudioToFaceMotion", pos=(420, 700), size=(320, 200),
         values={"fps": 8.0, "method": "auto", "strength": 1.0, "smoothing": 0.5}, links={"audio": (40, 0)},
         meta={"hellomeme_input": "fps"}),
    dict(id=42, type="HelloMemeCombineFaceMotion", title="Combine Face Motion (idle head + audio mouth)",
         pos=(800, 330), size=(320, 110), values={"idle_seed": 0},
         links={"mouth_motion": (41, 0), "reference_motion": (10, 0)}),
    _video_node(8, size=(280, 170), values={"backend": "mediapipe", "device": "auto", "pd_fgc": False}),  # arkit: no PD-FGC
    _video_node(11, links={"face_motion": (42, 0), "reference_motion": (10, 0), "size": (23, 0)}),
    _video_node(12, title="Load HelloMeme Models (arkit: audio-made mouth)",
                values={"version": "auto", "precision": "auto", "expression_mode": "arkit"}),
    _video_node(14, links={"model": (24, 0), "hm_models": (12, 0), "hm_reference": (13, 0), "condition": (11, 0),
                           "face_motion": (42, 0)}),
    _video_node(20, values={"fps": 8.0}, links={"images": (19, 0), "audio": (41, 1)}, meta={"hellomeme_input": "fps"}),
    _video_node(21, values={"filename_prefix": "hellomeme/talking", "format": "auto", "codec": "auto"}),
    _video_node(26, values={"fps": 8.0}, links={"images": (25, 0), "audio": (41, 1)}, meta={"hellomeme_input": "fps"}),
    _video_node(27, values={"filename_prefix": "hellomeme/talking_full", "format": "auto", "codec": "auto"}),
]
talking_groups = [
    ("1. Models and prompts", (20, 30, 360, 680), BLUE),
    ("2. Portrait, speech", (410, 30, 340, 890), BROWN),
    ("3. Face motion", (790, 30, 340, 850), GREEN),
    ("4. HelloMeme (arkit)", (1170, 30, 320, 890), PURPLE),
    ("5. Temporal stage", (1530, 30, 340, 250), PURPLE),
    ("6. Sample, decode, save with the speech (face crop)", (1890, 30, 800, 610), BLUE),
    ("7. Paste back into the full portrait", (1890, 650, 800, 560), BROWN),
]
talking_notes = [(TALKING_NOTE, (30, 740), (350, 600)), (ARKIT_NOTE, (1540, 300), (330, 130))]


WORKFLOWS = {
    "hellomeme_motion_preview": (motion_nodes, motion_groups, motion_notes),
    "hellomeme_video": (video_nodes, video_groups, video_notes),
    "hellomeme_upper_body": (upper_body_nodes, upper_body_groups, upper_body_notes),
    "hellomeme_talking": (talking_nodes, talking_groups, talking_notes),
}


def write_all(object_info: dict) -> list[str]:
    written = []
    for name, (nodes, groups, notes) in WORKFLOWS.items():
        ui, api = build(object_info, nodes, groups, notes, name.removeprefix("hellomeme_"))
        for path, data in ((WORKFLOWS_DIR / f"{name}.json", ui), (WORKFLOWS_DIR / f"{name}_api.json", api)):
            path.write_text(json.dumps(data, indent=2) + "\n")
            written.append(str(path))
    return written


def main() -> int:
    from tests.support.comfy_server import ComfyServer

    with tempfile.TemporaryDirectory(prefix="hellomeme-workflows-") as workdir, ComfyServer(workdir) as server:
        info = server.object_info()
    for path in write_all(info):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
