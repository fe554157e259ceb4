"""``python -m hellomeme_core motion``: driving motion (head pose, expression) of a video or image as JSON, or
(``--audio``) the mouth motion of speech as JSON or npz."""
from __future__ import annotations

import argparse
import sys

HELP = ("extract the driving motion (head pose, 51 expression coefficients) of a video or image into a JSON file, "
        "or with --audio the mouth motion of speech")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="a video (mp4, mov, webm, mkv, gif, ...) or an image (jpg, png, ...)")
    source.add_argument("--audio", help="speech (wav, mp3, flac, or a video's sound track): the mouth motion that "
                                         "follows it (jaw and lip coefficients; pose still)")
    parser.add_argument("--out", required=True, help="the motion to write: JSON, or with --audio .npz (numpy arrays)")
    parser.add_argument("--backend", choices=("mediapipe", "official"), default="mediapipe",
                        help="mediapipe (built in, no download; default) or official (HelloMeme ONNX face toolkit)")
    parser.add_argument("--models-dir", help="with --backend official: the folder holding hello_face_det.onnx, "
                                             "hello_face_landmark.onnx, hello_3dmm.onnx, hello_arkit_blendshape.onnx "
                                             "(default: the hellomeme models folder or its hello_group_facemodel/)")
    parser.add_argument("--device", default="auto", help="official backend: auto, cpu or cuda (default auto)")
    parser.add_argument("--preview", help="also write a video (or image) with the landmarks and pose axes drawn")
    parser.add_argument("--no-face", dest="no_face", choices=("hold", "interpolate", "drop", "error"), default="hold",
                        help="frames without a face: hold the last good frame (default), interpolate, drop, or error")
    parser.add_argument("--smoothing", type=float, default=None,
                        help="temporal smoothing strength 0..1 (One Euro filter; default 0); with --audio the "
                             "coarticulation blending (0 crisp .. 1 lazy; default 0.5)")
    parser.add_argument("--fps", type=float, default=8.0, help="with --audio: frames per second (default 8, the official rate)")
    parser.add_argument("--method", choices=("auto", "phonemes", "loudness+formants"), default="auto",
                        help="with --audio: phonemes (en-US, pocketsphinx), loudness+formants (any language), or auto")
    parser.add_argument("--strength", type=float, default=1.0, help="with --audio: mouth movement scale (default 1)")
    parser.add_argument("--transcript", default="",
                        help="with --audio: the English words spoken (quoted), aligned to the audio instead of "
                             "recognising them: the most exact phone timing (phonemes and auto)")
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


def _run_audio(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np

    from hellomeme_core.audio.motion import audio_to_face_motion
    from hellomeme_core.audio.signal import read_audio_file
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.face.arkit import ARKIT_NAMES

    try:
        samples, rate = read_audio_file(args.audio)
        smoothing = 0.5 if args.smoothing is None else args.smoothing
        motion, info = audio_to_face_motion(samples, rate, args.fps, args.method, args.strength, smoothing,
                                            args.transcript)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".npz":
        np.savez_compressed(out, expression=motion.expression, angles=motion.angles, translation=motion.translation,
                            names=np.array(ARKIT_NAMES), fps=np.float32(motion.fps),
                            info=np.array(json.dumps({"method": info.method, "phone_source": info.phone_source,
                                                      "reason": info.reason, "note": info.phone_note,
                                                      "seconds": info.seconds, "audio": str(args.audio)})))
    else:
        motion.audio_path = str(args.audio)
        motion.save_json(out, include_landmarks=False)
    jaw = motion.coefficient("jawOpen")
    print(f"{args.out}: {info.summary()}; jawOpen max {jaw.max():.2f}, open (> 0.2) in {(jaw > 0.2).mean():.0%} of frames")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.audio:
        return _run_audio(args)
    if args.smoothing is None:
        args.smoothing = 0.0
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
