"""``python -m hellomeme_core demo``: the main job as far as the models at hand allow.

Always: the driving video's motion (head pose + 51 expression coefficients) as JSON, a preview with
the tracked landmarks and pose axes, and the pose-condition video the HelloMeme control network sees
(driving motion applied relative to the reference portrait's own pose), both with the driving audio.
With official weights in the models folder: the list of versions ready to make the meme itself.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "extract motion from a driving video and write its landmark and pose-condition previews (the main job)"

# The sample media sit in ``shared/media`` beside the extension checkout (a development workspace);
# elsewhere --driving and --reference name the files.
_SHARED_MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driving", default=str(_SHARED_MEDIA / "driving" / "amns.mp4"),
                        help="driving video (default: the sample amns.mp4 of shared/media)")
    parser.add_argument("--reference", default=str(_SHARED_MEDIA / "reference" / "chillout.jpg"),
                        help="reference portrait whose pose the motion is applied to (default: shared/media chillout.jpg)")
    parser.add_argument("--out", default="out", help="output folder (default: out)")
    parser.add_argument("--max-frames", type=int, default=None, help="use only the first N driving frames")
    parser.add_argument("--smoothing", type=float, default=0.3, help="temporal smoothing strength 0..1 (default 0.3)")
    parser.add_argument("--translation-ratio", type=float, default=0.0,
                        help="how much of the driving head's movement across the frame is kept (0..1, default 0)")
    parser.add_argument("--size", type=int, default=512, help="condition image size in pixels (default 512)")
    parser.add_argument("--models-dir", help="HelloMeme models folder to report on (default: ComfyUI/models/hellomeme "
                                             "or $HELLOMEME_MODELS_DIR when set)")


def _report_models(models_dir: str | None) -> None:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.model_files.check import detect_versions
    from hellomeme_core.model_files.locations import default_models_dir

    try:
        folder = default_models_dir(models_dir)
    except HelloMemeError as exc:
        print(f"models: {exc}")
        return
    ready = [v for v, s in detect_versions([folder]).items() if s.video_ready]
    if ready:
        print(f"models: versions ready in {folder}: {', '.join(ready)}; load workflows/hellomeme_video_api.json in "
              "ComfyUI (or queue it through the HTTP API) to make the meme.")
    else:
        print(f"models: no complete HelloMeme version in {folder}; `python -m hellomeme_core download --version v5 "
              f"--models-dir {folder}` fetches one (`python -m hellomeme_core check` lists what is missing).")


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
    from hellomeme_core.face.native_logs import quiet_native_logs
    from hellomeme_core.face.preview import draw_preview
    from hellomeme_core.face.retarget import condition_images, relative_motion
    from hellomeme_core.media import read_media, write_video

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        analyzer = load_face_analyzer("mediapipe")
        clip = read_media(args.driving, args.max_frames)
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
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"motion: {len(drive)} frames, {drive.frames_without_face} without a face -> {out / 'motion.json'}")
    print(f"previews: {out / 'landmarks_preview.mp4'}, {out / 'pose_condition.mp4'} (with the driving audio)")
    _report_models(args.models_dir)
    return 0
