"""``python -m hellomeme_core demo``: the main job, as far as the models at hand allow.

Always: the driving video's motion (head pose + 51 expression coefficients) as JSON, a preview with
the tracked landmarks and pose axes, and the pose-condition video the HelloMeme control network sees
(driving motion applied relative to the reference portrait's own pose), both with the driving audio.

When a complete HelloMeme version and an SD1.5 checkpoint are found: the meme itself (``demo_meme``: one job
of the batch machinery queues the shipped workflow with the sample media on a ComfyUI that sees the files). The videos go to ``<out>/meme.mp4`` (the face crop, with the driving audio) and ``<out>/meme_full.mp4``
(pasted back into the whole portrait); the batch's own files (state, report, the server's log) to
``<out>/meme_batch/``. Without the files: the exact list of what is missing and the download command that
fetches it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = ("extract motion from a driving video, write its landmark and pose-condition previews, and make the meme "
        "when the model files are present (the main job)")

# The sample media sit in ``shared/media`` beside the extension checkout (a development workspace);
# elsewhere --driving and --reference name the files.
_SHARED_MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not more than 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hellomeme_core.model_files.locations import ENV_VAR
    from hellomeme_core.versions import AUTO_ORDER, VERSIONS

    parser.add_argument("--driving", default=str(_SHARED_MEDIA / "driving" / "amns.mp4"),
                        help="driving video (default: the sample amns.mp4 of shared/media)")
    parser.add_argument("--reference", default=str(_SHARED_MEDIA / "reference" / "chillout.jpg"),
                        help="reference portrait whose pose the motion is applied to (default: shared/media chillout.jpg)")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--max-frames", type=int, default=None,
                        help="use only the first N frames of the driving video (previews and meme)")
    parser.add_argument("--max-seconds", type=_positive_float, default=None, metavar="S",
                        help="use only the first S seconds of the driving video (previews and meme)")
    parser.add_argument("--smoothing", type=float, default=0.3, help="temporal smoothing strength 0..1 (default 0.3)")
    parser.add_argument("--translation-ratio", type=float, default=0.0,
                        help="how much of the driving head's movement across the frame the condition preview keeps "
                             "(0..1, default 0)")
    parser.add_argument("--size", type=int, default=512,
                        help="generation size in pixels, a multiple of 64 for the meme (default 512, the official "
                             "size); also the condition preview's size")
    parser.add_argument("--models-dir", help=f"the hellomeme models folder (default: ${ENV_VAR}, else "
                                             "ComfyUI/models/hellomeme of the ComfyUI this extension sits in or the "
                                             "meme runs on); the checkpoint is looked for in its sibling checkpoints/")
    meme = parser.add_argument_group("the meme (made when the files are found)")
    meme.add_argument("--checkpoint", metavar="PATH",
                      help="the SD1.5 checkpoint file (default: checkpoints/v1-5-pruned-emaonly.safetensors beside the "
                           "hellomeme models folder)")
    meme.add_argument("--version", choices=VERSIONS, metavar="V",
                      help=f"HelloMeme version (default: the first complete one of {', '.join(AUTO_ORDER['video'])})")
    meme.add_argument("--steps", type=int, help="sampling steps (default: the workflow's 25, official)")
    meme.add_argument("--seed", type=int, help="sampling seed (default: the workflow's 42)")
    meme.add_argument("--fps", type=float, help="frames per second taken from the driving video (default: the "
                                                "official 8; 0 = its own rate)")
    meme.add_argument("--previews-only", action="store_true", help="write the previews only, even when the files "
                                                                   "for the meme are there")
    local = parser.add_argument_group("the ComfyUI that makes the meme")
    local.add_argument("--server", default="auto", metavar="URL",
                       help="a running ComfyUI with this extension (it must see the model files), or 'auto' "
                            "(default): the one at http://127.0.0.1:8188 when it searches the folders the files are "
                            "in, else a local ComfyUI started for the meme and stopped after it")
    local.add_argument("--comfyui", metavar="PATH",
                       help="the ComfyUI folder to start (default: $COMFYUI_PATH, else the ComfyUI this extension "
                            "is in)")
    local.add_argument("--comfyui-args", default="", metavar="ARGS",
                       help="more arguments for its main.py, in one string with = (e.g. --comfyui-args=\"--lowvram\"); "
                            "--cpu is added when torch sees no GPU")
    local.add_argument("--startup-timeout", type=float, default=300.0, metavar="S",
                       help="seconds to wait for it to answer (default 300)")


# -- the previews ---------------------------------------------------------------------------------------------
def _preview_frame_limit(args: argparse.Namespace) -> int | None:
    """--max-frames, else --max-seconds as frames of the driving video's own rate."""
    if args.max_frames is not None or args.max_seconds is None:
        return args.max_frames
    from hellomeme_core.driving_video import probe
    from hellomeme_core.media import is_image_file

    if is_image_file(args.driving):
        return None
    return max(1, round(args.max_seconds * probe(args.driving).fps))


def _write_previews(args: argparse.Namespace, out: Path) -> float:
    """Motion JSON and the two preview videos; returns the driving video's frame rate."""
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
    from hellomeme_core.face.native_logs import quiet_native_logs
    from hellomeme_core.face.preview import draw_preview
    from hellomeme_core.face.retarget import condition_images, relative_motion
    from hellomeme_core.media import read_media, write_video

    analyzer = load_face_analyzer("mediapipe")
    clip = read_media(args.driving, _preview_frame_limit(args))
    print(f"driving: {args.driving}: {clip.frames.shape[0]} frames {clip.size[0]}x{clip.size[1]} at {clip.fps:g} fps")
    reference_clip = read_media(args.reference)
    with quiet_native_logs():  # mediapipe's C++ start-up lines would bury the summary
        drive = extract_face_motion(analyzer, clip.frames, clip.fps, clip.audio_path, "hold", args.smoothing,
                                    source=str(args.driving))
        reference = extract_face_motion(analyzer, reference_clip.frames, 0.0, None, "error", 0.0,
                                        source=str(args.reference))
    drive.save_json(out / "motion.json")
    reference.save_json(out / "reference_motion.json")
    fps = clip.fps or 25.0
    write_video(out / "landmarks_preview.mp4", draw_preview(clip.frames, drive), fps, clip.audio_path)
    relative = relative_motion(drive, reference)
    condition, _ = condition_images(relative, reference, args.translation_ratio, args.size)
    frames = ((condition.permute(1, 2, 3, 0).clamp(-1, 1) + 1) * 127.5).round().byte().numpy()
    write_video(out / "pose_condition.mp4", frames, fps, clip.audio_path)
    print(f"motion: {len(drive)} frames, {drive.frames_without_face} without a face -> {out / 'motion.json'}")
    print(f"previews: {out / 'landmarks_preview.mp4'}, {out / 'pose_condition.mp4'} (with the driving audio)")
    return fps


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.cli.demo_meme import find_meme_files, make_meme, models_dir_of, say_what_is_missing
    from hellomeme_core.errors import HelloMemeError

    if args.max_frames is not None and args.max_frames < 1:
        print(f"error: --max-frames {args.max_frames} must be 1 or more", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        driving_fps = _write_previews(args, out)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        models_dir = models_dir_of(args)
    except HelloMemeError as exc:
        print(f"models: {exc}")
        print("meme: not made (no models folder)")
        return 0
    files = find_meme_files(args, models_dir)
    if not files.ready:
        say_what_is_missing(files)
        return 0
    if args.previews_only:
        print(f"meme: not made (--previews-only); {files.version} and {files.checkpoint} are ready for it")
        return 0
    max_seconds = args.max_seconds
    if max_seconds is None and args.max_frames is not None:
        max_seconds = args.max_frames / driving_fps
    return make_meme(args, out, files, max_seconds)
