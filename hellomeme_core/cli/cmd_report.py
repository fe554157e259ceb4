"""``python -m hellomeme_core report``: how closely a result video follows its driving clip (motion fidelity)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = ("motion-fidelity report of a result video against its driving clip: head-pose and expression errors, "
        "mouth correlation, jitter, delay, identity drift; JSON and PNG plots")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is below 0")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--driving", required=True, help="the driving video (or image)")
    parser.add_argument("--result", required=True, help="the generated video to judge")
    parser.add_argument("--reference", help="the reference portrait (image or video): adds the identity drift")
    parser.add_argument("--out", help="folder for report.json, curves.png and errors.png (default: report/ "
                                      "beside the result)")
    parser.add_argument("--json", action="store_true", help="print the report's JSON instead of the summary")
    parser.add_argument("--pixels", action="store_true",
                        help="also PSNR/SSIM (only meaningful when the result re-enacts its own driving clip)")
    parser.add_argument("--max-lag", type=_non_negative, default=12, metavar="N",
                        help="largest delay looked for, in frames either way (default 12)")
    parser.add_argument("--max-frames", type=int, help="analyse only the first N frames of each video")
    parser.add_argument("--insightface", metavar="DIR",
                        help="with --reference: an insightface models folder (default $HELLOMEME_INSIGHTFACE_DIR) whose "
                             "pack (--pack) adds the identity similarity of every result frame (ArcFace cosine, CSIM)")
    parser.add_argument("--pack", default="antelopev2", help="the insightface pack for --insightface (default antelopev2)")


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.report.videos import identity_pack, report_videos

    out = Path(args.out) if args.out else Path(args.result).resolve().parent / "report"
    try:
        pack = identity_pack(args.insightface, args.pack) if args.reference else None
        done = report_videos(args.driving, args.result, args.reference, out, pixels=args.pixels,
                             max_lag=args.max_lag, max_frames=args.max_frames, identity_pack_dir=pack)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(done.report.to_json()))
    else:
        print(done.report.text())
        for note in done.report.notes[:1]:
            print(f"note: {note}")
        print("files: " + ", ".join(str(p) for p in done.files))
    return 0
