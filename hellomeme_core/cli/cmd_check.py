"""``python -m hellomeme_core check``: which HelloMeme versions the models folder holds (headers only)."""
from __future__ import annotations

import argparse
import json
import sys

HELP = "check the HelloMeme model files: per version present / missing / wrong (reads headers only)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from hellomeme_core.model_files.locations import ENV_VAR
    from hellomeme_core.versions import VERSIONS

    parser.add_argument("--models-dir", help=f"the hellomeme models folder (default: ${ENV_VAR}, else ComfyUI/models/hellomeme "
                                             "when this extension sits in ComfyUI/custom_nodes)")
    parser.add_argument("--version", action="append", choices=VERSIONS, metavar="V",
                        help=f"check only this version (repeatable; one of {', '.join(VERSIONS)}); the exit code is 1 "
                             "unless every requested version is complete")
    parser.add_argument("--stage", choices=("image", "video"), default="video",
                        help="what 'complete' means for --version: image stage only, or image + temporal stage (default)")
    parser.add_argument("--toolkit", action="store_true",
                        help="also check the optional files: face toolkit, CLIP vision encoder, SD1.5 checkpoint "
                             "(in the sibling clip_vision/ and checkpoints/ folders)")
    parser.add_argument("--file", help="check one weight file or diffusers folder instead; with --repo, against that repo")
    parser.add_argument("--repo", help="with --file: the official repo it should be (e.g. hm5_reference); default: guess")
    parser.add_argument("--json", action="store_true", help="print a JSON report")


def _check_one_file(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError, WeightFileError
    from hellomeme_core.model_files import layout
    from hellomeme_core.model_files.check import check_file
    from hellomeme_core.model_files.safetensors_io import read_header, resolve_weight_file

    try:
        if args.repo:
            repo = layout.repo_from_name(args.repo)
        else:
            header = read_header(resolve_weight_file(args.file))
            guesses = layout.guess_repos(header, {k: v.shape for k, v in header.items()})
            if not guesses:
                print(f"{args.file}: no HelloMeme layout matches its tensors ({len(header)} tensors).")
                return 1
            repo = guesses[0]
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    except (WeightFileError, HelloMemeError) as exc:
        print(f"CORRUPT: {exc}")
        return 1
    report = check_file(args.file, repo)
    print(report.summary())
    return 0 if report.ok else 1


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.model_files.check import check_entry, detect_versions, format_report
    from hellomeme_core.model_files.locations import default_models_dir
    from hellomeme_core.model_files.manifest import folder_map, load_manifest

    if args.file:
        return _check_one_file(args)
    try:
        models_dir = default_models_dir(args.models_dir)
    except HelloMemeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    statuses = detect_versions([models_dir], args.version)
    packs = _insightface_packs(models_dir)
    extras = []
    if args.toolkit:
        folders = {k: [v] for k, v in folder_map(models_dir).items()}
        extras = [check_entry(e, folders) for e in load_manifest().entries
                  if e.kind in ("face_toolkit", "clip_vision", "checkpoint") and not e.path.endswith("config.json")]

    requested_ok = all(st.video_ready if args.stage == "video" else st.image_ready for st in statuses.values())
    any_bad = any(st.bad for st in statuses.values()) or any(r.status in ("wrong", "corrupt") for r in extras)
    if args.json:
        print(json.dumps({
            "models_dir": str(models_dir),
            "versions": {v: {"state": st.state, "image_ready": st.image_ready, "video_ready": st.video_ready,
                             "files": [_file_json(f) for f in st.files]} for v, st in statuses.items()},
            "optional": [_file_json(r) for r in extras],
            "insightface": packs,
        }, indent=2))
    else:
        print(format_report(statuses, [models_dir]))
        if extras:
            print("Optional files:")
            for r in extras:
                print(f"  {r.status:<8} {r.repo}" + (f"  [{r.path}]" if r.path else "") + (f": {r.message}" if r.status in ("wrong", "corrupt") else ""))
        if args.version and not requested_ok:
            missing = sorted({f.repo for st in statuses.values() for f in st.files if f.status == "missing"})
            if missing:
                print(f"Incomplete. Fetch with: python -m hellomeme_core download --version {' --version '.join(args.version)} "
                      f"--models-dir {models_dir}")
        print(f"Optional insightface packs (identity similarity, follow one person, insightface detector; never "
              f"downloaded, non-commercial research licence) in {', '.join(p for p in _insightface_dirs(models_dir))}:")
        for p in packs:
            detail = f"  [{p['path']}]" if p["path"] else ""
            lacking = f": lacks {', '.join(p['missing'])}" if p["status"] != "found" and p["missing"] else ""
            print(f"  {p['status']:<10} {p['id']}{detail}{lacking}")
    if any_bad:
        return 1
    if args.version and not requested_ok:
        return 1
    return 0


def _insightface_dirs(models_dir) -> list[str]:
    """The insightface folder beside the hellomeme folder, and $HELLOMEME_INSIGHTFACE_DIR when set."""
    import os

    from hellomeme_core.face.insightface.packs import ENV_VAR, FOLDER_NAME

    dirs = [str(models_dir.parent / FOLDER_NAME)]
    if os.environ.get(ENV_VAR):
        dirs.insert(0, os.environ[ENV_VAR])
    return dirs


def _insightface_packs(models_dir) -> list[dict]:
    from hellomeme_core.face.insightface.packs import pack_report

    return pack_report(_insightface_dirs(models_dir))


def _file_json(report) -> dict:
    return {"id": report.repo, "status": report.status, "path": str(report.path) if report.path else None,
            "message": report.message, "missing_keys": report.missing_keys[:20],
            "unexpected_keys": report.unexpected_keys[:20],
            "shape_mismatch": list(report.shape_mismatch) if report.shape_mismatch else None,
            "looks_like": report.looks_like}
