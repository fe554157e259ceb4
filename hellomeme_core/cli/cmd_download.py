"""``python -m hellomeme_core download``: fetch the files a version needs, resumable and verified."""
from __future__ import annotations

import argparse
import sys

HELP = "download the files a HelloMeme version needs into the models folder (resumable, verified)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hellomeme_core.model_files.locations import ENV_VAR
    from hellomeme_core.versions import VERSIONS

    parser.add_argument("--version", action="append", choices=VERSIONS, metavar="V",
                        help=f"a version to fetch (repeatable; one of {', '.join(VERSIONS)})")
    parser.add_argument("--stage", choices=("image", "video"), default="video",
                        help="image: only the single-frame modules; video (default): also the temporal modules")
    parser.add_argument("--toolkit", action="store_true", help="also the official face toolkit (4 ONNX files + PD-FGC encoder)")
    parser.add_argument("--clip-vision", action="store_true", help="also the CLIP ViT-H image encoder (into ../clip_vision)")
    parser.add_argument("--checkpoint", action="store_true", help="also the suggested SD1.5 checkpoint (into ../checkpoints, 4.3 GB)")
    parser.add_argument("--id", action="append", default=[], help="a models_manifest.json entry id to fetch (repeatable)")
    parser.add_argument("--models-dir", help=f"the hellomeme models folder, created if needed (default: ${ENV_VAR}, else "
                                             "ComfyUI/models/hellomeme); clip_vision/ and checkpoints/ are its siblings")
    parser.add_argument("--mirror", help="a Hugging Face hub mirror base URL; files come from {mirror}/{repo}/resolve/main/{file}")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a connection or data (default 30)")
    parser.add_argument("--retries", type=int, default=3, help="resume attempts after a cut connection (default 3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched and where, fetch nothing")


def select_entries(args: argparse.Namespace):
    """Manifest entries chosen by the flags, without duplicates, in manifest order."""
    from hellomeme_core.model_files.manifest import load_manifest

    manifest = load_manifest()
    chosen = []
    for version in args.version or []:
        chosen += manifest.for_version(version, args.stage)
    if args.toolkit:
        chosen += manifest.of_kind("face_toolkit")
    if args.clip_vision:
        chosen += manifest.of_kind("clip_vision")
    if args.checkpoint:
        chosen += manifest.of_kind("checkpoint")
    chosen += [manifest.by_id(i) for i in args.id]
    refused = [e.id for e in chosen if e.kind == "insightface"]
    if refused:  # their licence is non-commercial research only: the user places them, we never fetch them
        raise KeyError(f"{', '.join(refused)}: the insightface packs are never downloaded (non-commercial research "
                       "licence). Copy the pack folder (antelopev2 or buffalo_l) into ComfyUI/models/insightface/models/ "
                       "yourself; `python -m hellomeme_core check` shows whether it is found.")
    seen, out = set(), []
    for e in manifest.entries:
        if e in chosen and e.id not in seen:
            seen.add(e.id)
            out.append(e)
    return out


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.model_files.check import check_file
    from hellomeme_core.model_files.download import DownloadError, OfflineError, check_mirror, download_entries
    from hellomeme_core.model_files.locations import default_models_dir
    from hellomeme_core.model_files.manifest import folder_map

    try:
        entries = select_entries(args)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not entries:
        print("error: nothing selected; give --version V (and/or --toolkit, --clip-vision, --checkpoint, --id ID).", file=sys.stderr)
        return 2
    try:
        models_dir = default_models_dir(args.models_dir, must_exist=False)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        check_mirror(args.mirror)
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    folders = folder_map(models_dir)
    if args.dry_run:
        for e in entries:
            print(f"{e.target(folders)}  <-  {e.urls_for(args.mirror)[0]}")
        return 0
    try:
        download_entries(entries, folders, mirror=args.mirror, progress=not args.no_progress,
                         timeout=args.timeout, retries=args.retries)
    except OfflineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # disk full, no permission, a file where a folder should be
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"error: cannot write the download{where}: {exc.strerror or exc}. Partial files (*.part) are kept; "
              "run the same command again to resume once this is fixed.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: partial files (*.part) are kept; run the same command again to resume.", file=sys.stderr)
        return 130
    # Verify the layout of what arrived (a hub file could differ from the layout we know).
    bad = 0
    for e in entries:
        if e.layout:
            report = check_file(e.target(folders), e.layout)
            if not report.ok:
                bad += 1
                print(f"warning: {report.problem}", file=sys.stderr)  # just fetched: refetching is no fix
    print(f"done: {len(entries)} file(s) in {models_dir}" + (f"; {bad} do not match the official layout" if bad else ""))
    return 1 if bad else 0
