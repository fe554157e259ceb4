"""``python -m hellomeme_core motion``: driving motion (head pose, expression) of a video or image as JSON."""
from __future__ import annotations

import argparse
import sys

HELP = "extract the driving motion (head pose, 51 expression coefficients) of a video or image into a JSON file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="a video (mp4, mov, webm, mkv, gif, ...) or an image (jpg, png, ...)")
    parser.add_argument("--out", required=True, help="the motion JSON to write")
    parser.add_argument("--backend", choices=("mediapipe", "official"), default="mediapipe",
                        help="mediapipe (built in, no download; default) or official (HelloMeme ONNX face toolkit)")
    parser.add_argument("--models-dir", help="with --backend official: the folder holding hello_face_det.onnx, "
                                             "hello_face_landmark.onnx, hello_3dmm.onnx, hello_arkit_blendshape.onnx "
                                             "(default: the hellomeme models folder or its hello_group_facemodel/)")
    parser.add_argument("--device", default="auto", help="official backend: auto, cpu or cuda (default auto)")
    parser.add_argument("--preview", help="also write a video (or image) with the landmarks and pose axes drawn")
    parser.add_argument("--no-face", dest="no_face", choices=("hold", "interpolate", "drop", "error"), default="hold",
                        help="frames without a face: hold the last good frame (default), interpolate, drop, or error")
    parser.add_argument("--smoothing", type=float, default=0.0, help="temporal smoothing strength 0..1 (One Euro filter; default 0)")
    parser.add_argument("--max-frames", type=int, help="analyse only the first N frames")
    parser.add_argument("--no-landmarks", action="store_true", help="leave the per-frame landmarks out of the JSON")
    parser.add_argument("--allow-partial", action="store_true",
                        help="a truncated or damaged video: use the frames that decode (with a warning) instead of stopping")


def _toolkit_dir(args: argparse.Namespace) -> str | None:
    """--models-dir, else the default hellomeme models folder, searched for the ONNX toolkit."""
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.face.official_backend import find_toolkit_dir
    from hellomeme_core.model_files.locations import default_models_dir

    try:
        base = args.models_dir or default_models_dir(must_exist=False)
    except HelloMemeError:
        return None
    found = find_toolkit_dir([base])
    return str(found) if found else None


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.face.analyzer import extract_face_motion, load_face_analyzer
    from hellomeme_core.face.native_logs import quiet_native_logs
    from hellomeme_core.face.preview import draw_preview
    from hellomeme_core.media import is_image_file, read_media, write_video

    try:
        clip = read_media(args.input, args.max_frames, allow_partial=args.allow_partial)
        for warning in clip.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        analyzer = load_face_analyzer(args.backend, args.device, _toolkit_dir(args) if args.backend == "official" else None)
        with quiet_native_logs():  # mediapipe's C++ start-up lines would bury the summary
            motion = extract_face_motion(analyzer, clip.frames, clip.fps, clip.audio_path, args.no_face, args.smoothing,
                                         source=str(args.input))
        motion.save_json(args.out, include_landmarks=not args.no_landmarks)
        if args.preview:
            preview = draw_preview(clip.frames, motion)
            if is_image_file(args.preview):
                import cv2

                cv2.imwrite(str(args.preview), cv2.cvtColor(preview[0], cv2.COLOR_RGB2BGR))
            else:
                write_video(args.preview, preview, clip.fps or 25.0, clip.audio_path)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    degrees = motion.yaw_pitch_roll_degrees
    missing = motion.frames_without_face
    policy = f"{args.no_face}: left out of the motion" if args.no_face == "drop" and missing else args.no_face
    print(f"{args.out}: {len(motion)} frame(s) at {motion.fps:g} fps, {missing} of {motion.source_frame_count} source "
          f"frame(s) without a face ({policy}); yaw {degrees[:, 0].min():.1f}..{degrees[:, 0].max():.1f}, "
          f"pitch {degrees[:, 1].min():.1f}..{degrees[:, 1].max():.1f}, roll {degrees[:, 2].min():.1f}..{degrees[:, 2].max():.1f} deg")
    return 0
