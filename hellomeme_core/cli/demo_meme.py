"""The meme part of ``python -m hellomeme_core demo``: find the model files, then make the meme with one job of
the batch machinery (``hellomeme_core.batch``, in this process) on a ComfyUI that sees those files.

The ComfyUI is the one answering at the default address when it searches the folders the files are in, else a
local one started for the job (``--comfyui`` / ``$COMFYUI_PATH`` / the tree this extension sits in) and stopped
after it, handed an ``extra_model_paths.yaml`` naming the folders found when they are not its own.
"""
from __future__ import annotations
import argparse
import asyncio
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_NAME = "meme"  # the batch job's name: its outputs are meme.mp4 and meme_full.mp4
BATCH_DIR = "meme_batch"  # inside --out: the batch's state, report, ComfyUI log, extra_model_paths.yaml
CHECKPOINT_ID = "sd15_checkpoint"  # models_manifest.json entry of the checkpoint the shipped workflow loads


# -- finding the files ----------------------------------------------------------------------------------------
@dataclass
class MemeFiles:
    """What the meme needs, as found: ``version`` and ``checkpoint`` are None when not usable, and then
    ``missing`` / ``problems`` / ``fetch`` say what to get and how."""

    models_dir: Path
    version: str | None
    checkpoint: Path | None
    missing: list[Path]  # files to fetch, where they go
    problems: list[str]  # files that are there but unusable (truncated, another layout), each with its fix
    fetch: str | None  # the download command for the missing files

    @property
    def ready(self) -> bool:
        return self.version is not None and self.checkpoint is not None


def _known_comfyui_root(args: argparse.Namespace) -> Path | None:
    """The ComfyUI folder the meme would run on (--comfyui / $COMFYUI_PATH / the tree around us), if known."""
    from hellomeme_core.batch.errors import LocalServerError
    from hellomeme_core.batch.local_server import find_comfyui_root

    try:
        return find_comfyui_root(args.comfyui)
    except LocalServerError:
        return None


def models_dir_of(args: argparse.Namespace) -> Path:
    """--models-dir / $HELLOMEME_MODELS_DIR / ComfyUI/models/hellomeme (of the tree around this extension, else
    of the ComfyUI the meme runs on: the ``make demo`` tree of a development checkout)."""
    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.model_files.locations import ENV_VAR, default_models_dir

    try:
        return default_models_dir(args.models_dir, must_exist=False)
    except HelloMemeError:
        if args.models_dir or os.environ.get(ENV_VAR):
            raise
        root = _known_comfyui_root(args)
        if root is None:
            raise
        return root / "models" / "hellomeme"


def _find_checkpoint(args: argparse.Namespace, models_dir: Path) -> tuple[Path | None, str | None, bool]:
    """(the checkpoint, else None; what is wrong with it; whether ``download --checkpoint`` fetches it)."""
    from hellomeme_core.errors import WeightFileError
    from hellomeme_core.model_files.check import check_entry
    from hellomeme_core.model_files.manifest import folder_map, load_manifest
    from hellomeme_core.model_files.safetensors_io import read_header

    if args.checkpoint:
        path = Path(args.checkpoint).expanduser().resolve()
        if not path.is_file():
            return None, f"--checkpoint {args.checkpoint}: no such file", False
        if path.suffix.lower() == ".safetensors":
            try:
                read_header(path)
            except WeightFileError as exc:
                return None, f"--checkpoint {path}: {exc.problem}", False
        return path, None, False
    entry = load_manifest().by_id(CHECKPOINT_ID)
    folder = folder_map(models_dir)[entry.folder]
    report = check_entry(entry, {entry.folder: [folder]})
    if report.status == "ok":
        return report.path, None, False
    if report.status == "missing":
        return None, None, True
    return None, report.message, False


def find_meme_files(args: argparse.Namespace, models_dir: Path) -> MemeFiles:
    """The version and checkpoint the meme runs with, or the exact list of what is missing."""
    from hellomeme_core.model_files.check import detect_versions
    from hellomeme_core.model_files.layout import short_name
    from hellomeme_core.model_files.safetensors_io import DIFFUSERS_WEIGHT_NAME
    from hellomeme_core.versions import AUTO_ORDER

    statuses = detect_versions([models_dir])
    if args.version:
        version = args.version if statuses[args.version].video_ready else None
    else:
        version = next((v for v in AUTO_ORDER["video"] if statuses[v].video_ready), None)
    checkpoint, checkpoint_problem, fetch_checkpoint = _find_checkpoint(args, models_dir)
    missing: list[Path] = []
    problems: list[str] = []
    fetch_version = None
    if version is None:
        fetch_version = args.version or AUTO_ORDER["video"][0]
        for report in statuses[fetch_version].files:
            if report.status == "missing":
                missing.append(models_dir / short_name(report.repo) / DIFFUSERS_WEIGHT_NAME)
            elif not report.ok:
                problems.append(report.message)
    if fetch_checkpoint:
        from hellomeme_core.model_files.manifest import folder_map, load_manifest

        missing.append(load_manifest().by_id(CHECKPOINT_ID).target(folder_map(models_dir)))
    if checkpoint_problem:
        problems.append(checkpoint_problem)
    fetch = None
    if fetch_version or fetch_checkpoint:
        options = f" --version {fetch_version}" if fetch_version else ""
        options += " --checkpoint" if fetch_checkpoint else ""
        fetch = f"python -m hellomeme_core download{options} --models-dir {shlex.quote(str(models_dir))}"
    return MemeFiles(models_dir, version, checkpoint, missing, problems, fetch)


def say_what_is_missing(files: MemeFiles) -> None:
    from hellomeme_core.model_files.check import detect_versions

    ready = [v for v, s in detect_versions([files.models_dir]).items() if s.video_ready]
    if ready:
        print(f"models: versions ready in {files.models_dir}: {', '.join(ready)}")
    else:
        print(f"models: no complete HelloMeme version in {files.models_dir}")
    if files.missing:
        print(f"meme: not made; {len(files.missing)} missing file(s):")
        for path in files.missing:
            print(f"  {path}")
    else:
        print("meme: not made")
    for problem in files.problems:
        print(f"  {problem}")
    if files.fetch:
        print(f"fetch them: {files.fetch}")
    print("(or point --models-dir / $HELLOMEME_MODELS_DIR at a folder that holds a complete version, and "
          "--checkpoint at an SD1.5 checkpoint), then run the demo again.")


# -- the server -----------------------------------------------------------------------------------------------
def _get_json(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _server_sees(url: str, files: MemeFiles) -> bool:
    """Whether the ComfyUI at ``url`` has this extension and searches the very folders the files were found in
    (``/internal/folder_paths``; a ComfyUI without that route is not used)."""
    assert files.checkpoint is not None
    if not _get_json(f"{url}/object_info/HelloMemeLoadModels"):
        return False
    folders = _get_json(f"{url}/internal/folder_paths")
    if not isinstance(folders, dict):
        return False

    def searched(name: str, folder: Path) -> bool:
        paths = folders.get(name) or []
        return isinstance(paths, list) and any(Path(str(p)).resolve() == folder.resolve() for p in paths)

    return searched("hellomeme", files.models_dir) and searched("checkpoints", files.checkpoint.parent)


def _no_accelerator() -> bool:
    """Whether torch sees no GPU (ComfyUI then needs --cpu; it would stop at start-up without it)."""
    import torch

    for backend in (torch.cuda, getattr(torch.backends, "mps", None), getattr(torch, "xpu", None)):
        try:
            if backend is not None and backend.is_available():
                return False
        except (RuntimeError, AttributeError):
            continue
    return True


def _model_paths_yaml(root: Path, files: MemeFiles, batch_dir: Path) -> Path | None:
    """An ``extra_model_paths.yaml`` naming the folders found, when they are not ``root``'s own; else None."""
    assert files.checkpoint is not None
    own = root / "models"
    found = {"hellomeme": files.models_dir, "checkpoints": files.checkpoint.parent}
    extra = {name: folder for name, folder in found.items() if folder.resolve() != (own / name).resolve()}
    path = batch_dir / "extra_model_paths.yaml"
    if not extra:
        path.unlink(missing_ok=True)  # an earlier run's, for other folders
        return None
    # JSON strings are YAML double-quoted scalars: any path survives. is_default puts them before the tree's own
    # folders, so a file of the same name there does not win.
    lines = ["# Written by `python -m hellomeme_core demo`: the model folders it found, for the ComfyUI it starts.",
             "hellomeme_demo:", "    is_default: true"]
    lines += [f"    {name}: {json.dumps(str(folder.resolve()))}" for name, folder in extra.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the meme -------------------------------------------------------------------------------------------------
def _meme_workflow(checkpoint: Path, max_seconds: float | None):
    """The shipped workflow with the checkpoint's file name in both loaders and the driving clip's length."""
    from hellomeme_core.batch.workflow import Workflow, shipped_workflow_path

    source = shipped_workflow_path()
    graph = json.loads(source.read_text(encoding="utf-8"))
    for node in graph.values():
        if node["class_type"] == "CheckpointLoaderSimple":
            node["inputs"]["ckpt_name"] = checkpoint.name
        elif node["class_type"] == "HelloMemeLoadDrivingVideo" and max_seconds:
            node["inputs"]["max_seconds"] = float(max_seconds)
    return Workflow(graph, f"{source} (demo)")


def _meme_job(args: argparse.Namespace, files: MemeFiles):
    """The one batch job, or a message saying which option is wrong."""
    from hellomeme_core.batch.jobs import Job, check_settings

    raw = {"version": files.version, "size": args.size, "steps": args.steps, "seed": args.seed, "fps": args.fps}
    settings, problems = check_settings(raw)
    if problems:
        return None, "; ".join(f"--{p}" for p in problems)
    reference, driving = Path(args.reference).resolve(), Path(args.driving).resolve()
    return Job(JOB_NAME, reference, driving, settings), None


async def _run_job(job, workflow, store, reporter, url: str, batch_dir: Path, local):
    from hellomeme_core.batch.client import ComfyClient
    from hellomeme_core.batch.runner import BatchRunner, RunnerOptions, install_signal_handlers

    # A server that stops answering is given 2 minutes (a local one is started again by the runner).
    options = RunnerOptions(max_queued=1, server_wait=120.0)
    async with ComfyClient(url, store.client_id) as client:
        runner = BatchRunner([job], workflow, client, store, reporter, batch_dir, options, local)
        install_signal_handlers(runner, asyncio.current_task())
        return await runner.run()


def make_meme(args: argparse.Namespace, out: Path, files: MemeFiles, max_seconds: float | None) -> int:
    """Run the one job; returns the exit code (0 made, 1 failed, 2 bad option, 130 Ctrl-C)."""
    from hellomeme_core.batch.errors import BatchError
    from hellomeme_core.batch.local_server import DEFAULT_URL, LocalComfyUI, answers, find_comfyui_root
    from hellomeme_core.batch.progress import TerminalReporter
    from hellomeme_core.batch.state import DONE, StateStore

    assert files.version is not None and files.checkpoint is not None
    job, problem = _meme_job(args, files)
    if job is None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    batch_dir = out / BATCH_DIR
    batch_dir.mkdir(parents=True, exist_ok=True)
    made = [out / f"{JOB_NAME}.mp4", out / f"{JOB_NAME}_full.mp4"]
    for path in made:  # a failed run must not leave an earlier meme looking like its result
        path.unlink(missing_ok=True)
    settings = ", ".join(f"{k} {v}" for k, v in job.settings.items())
    print(f"meme: {files.version} from {files.models_dir}, checkpoint {files.checkpoint} ({settings})")
    workflow = _meme_workflow(files.checkpoint, max_seconds)
    store = StateStore(batch_dir)
    reporter = TerminalReporter()
    local = None
    began = time.monotonic()
    try:
        store.lock()
        store.load()
        url = args.server
        if url == "auto":
            leftover = LocalComfyUI.adopt(batch_dir)
            if leftover is not None:  # a killed demo's server: its model folders may not be this run's
                leftover.stop()
            if answers(DEFAULT_URL) and _server_sees(DEFAULT_URL, files):
                url = DEFAULT_URL
                print(f"meme: using the ComfyUI at {url} (it searches these model folders)")
            else:
                root = find_comfyui_root(args.comfyui)
                extra = shlex.split(args.comfyui_args)
                yaml_path = _model_paths_yaml(root, files, batch_dir)
                if yaml_path is not None:
                    extra += ["--extra-model-paths-config", str(yaml_path)]
                if "--cpu" not in extra and _no_accelerator():
                    extra.append("--cpu")
                    print("meme: no GPU found: ComfyUI runs on the CPU (slow at the official 512 px and 25 steps; "
                          "--size 256 --steps 8 --max-seconds 2 is a quick try)")
                (batch_dir / "comfyui.log").unlink(missing_ok=True)  # this run's log only
                local = LocalComfyUI(root, batch_dir / "comfyui.log", extra_args=extra,
                                     startup_timeout=args.startup_timeout)
                print(f"meme: starting ComfyUI from {root} for it (log: {local.log_path})", flush=True)
                local.start()
                url = local.url
                print(f"meme: ComfyUI answers at {url}", flush=True)
        elif not answers(url, timeout=5.0):
            print(f"meme: not made: nothing answers at {url} (is ComfyUI running there? --server auto starts one)",
                  file=sys.stderr)
            return 1
        elif not _server_sees(url, files):
            print(f"meme: warning: the ComfyUI at {url} does not search {files.models_dir} and "
                  f"{files.checkpoint.parent} (or lacks this extension); the job fails unless it has the same files")
        outcome = asyncio.run(_run_job(job, workflow, store, reporter, url, batch_dir, local))
    except BatchError as exc:
        print(f"meme: not made: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("meme: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    finally:
        if local is not None:
            local.stop()
        reporter.close()
        store.unlock()
    if outcome.interrupted:
        print("meme: stopped (Ctrl-C)", file=sys.stderr)
        return 130
    record = store.record(JOB_NAME)
    if record.status != DONE:
        log = f"; the server's log: {batch_dir / 'comfyui.log'}" if local is not None else ""
        print(f"meme: not made: {record.error or record.status}{log}", file=sys.stderr)
        return 1
    # The batch's folder keeps its bookkeeping; the videos go beside the previews. (A next run finds them gone
    # from the batch folder and makes the meme again, as a demo should.)
    for name in record.outputs:
        os.replace(batch_dir / name, out / name)
    audio = "with" if record.has_audio else "without"
    print(f"meme: {out / record.outputs[0]} ({record.frames} frames, {audio} the driving audio)"
          + "".join(f", {out / name}" for name in record.outputs[1:])
          + f" in {time.monotonic() - began:.0f} s")
    return 0
