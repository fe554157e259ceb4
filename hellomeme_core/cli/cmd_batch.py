"""``python -m hellomeme_core batch``: make many meme videos through a ComfyUI server's HTTP API, resumably."""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path

HELP = ("queue many meme videos (reference portrait x driving video) through ComfyUI's HTTP API; "
        "resumable, never runs a job twice")

EPILOG = """\
jobs: a CSV with a header row or a JSONL file, one job per row/line, paths relative to the file:
  reference,driving,name,seed,steps
  portraits/alice.jpg,clips/wink.mp4,alice_wink,42,
  {"reference": "portraits/bob.png", "driving": "clips/nod.mp4", "prompt": "oil painting"}
  keys: reference, driving (required); name (output file name), version, seed, steps, cfg, size (multiple of
  64), fps (target fps of the driving clip), prompt (put before the workflow's positive prompt); an empty cell
  keeps the workflow's value. Or --references DIR --drivings DIR instead of a file.

outputs: DIR/<name>.mp4 (the main video, with the driving clip's audio) and DIR/<name>_<output>.mp4 for each
  further output node (the shipped workflow: <name>_full.mp4, the face pasted back into the whole portrait);
  DIR/report.json and a summary table; DIR/batch_state.json lets the same command resume after a crash, a
  server restart or Ctrl-C (finished jobs are skipped; failed ones too unless --retry-failed).

exit codes: 0 all jobs done, 1 some failed, 2 bad jobs file / workflow / options, 3 server unreachable,
  130 stopped by Ctrl-C (run the same command again to go on).
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("jobs", nargs="?", metavar="JOBS", help="a .csv or .jsonl file of jobs (or use --references/--drivings)")
    parser.add_argument("--references", metavar="DIR", help="a folder of reference portraits (jpg, png, ...)")
    parser.add_argument("--drivings", metavar="DIR", help="a folder of driving videos: every reference x every video")
    parser.add_argument("--pair-by-name", action="store_true",
                        help="with the folders: pair alice.jpg only with alice.mp4 and alice_*.mp4")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (videos, report.json, batch_state.json)")
    parser.add_argument("--server", default="auto", metavar="URL",
                        help="ComfyUI address, e.g. http://127.0.0.1:8188; 'auto' (default): that address if a "
                             "ComfyUI answers there, else start one (--comfyui) for the batch and stop it after")
    parser.add_argument("--workflow", metavar="FILE",
                        help="API-format workflow (default: the shipped workflows/hellomeme_video_api.json); its job "
                             "inputs are found by _meta markers or by node class (see the README)")
    parser.add_argument("--max-queued", type=_positive_int, default=2, metavar="N",
                        help="prompts of this batch in the server's queue at once, the running one included "
                             "(default 2: the next job waits ready in the server's queue)")
    parser.add_argument("--json", action="store_true", help="print one JSON event per line instead of the progress bar")
    parser.add_argument("--retry-failed", action="store_true", help="run again the jobs that failed in an earlier run")
    parser.add_argument("--fidelity", action="store_true",
                        help="after each job, a motion-fidelity report of its video against the driving clip (head-pose "
                             "error APD, expression error AED, mouth correlation, delay) in the report and "
                             "DIR/<name>_fidelity/ (runs face analysis on both videos: slower)")
    parser.add_argument("--insightface", metavar="DIR",
                        help="with --fidelity: an insightface models folder (default $HELLOMEME_INSIGHTFACE_DIR) whose "
                             "pack (--pack) adds each job's identity similarity to its reference (ArcFace cosine)")
    parser.add_argument("--pack", default="antelopev2", help="the insightface pack for --insightface (default antelopev2)")
    group = parser.add_argument_group("settings for every job (a job's own value wins)")
    group.add_argument("--version", help="HelloMeme version (auto, v1 ... v5c)")
    group.add_argument("--seed", type=int)
    group.add_argument("--steps", type=int)
    group.add_argument("--cfg", type=float)
    group.add_argument("--size", type=int, help="generation size in pixels, a multiple of 64 (official 512)")
    group.add_argument("--fps", type=float, help="frames per second taken from the driving clip (official 8; 0 = its own)")
    group.add_argument("--prompt", help="text put before the workflow's positive prompt")
    local = parser.add_argument_group("a local ComfyUI (--server auto when nothing answers)")
    local.add_argument("--comfyui", metavar="PATH",
                       help="the ComfyUI folder to start (default: $COMFYUI_PATH, else the ComfyUI this extension is in)")
    local.add_argument("--comfyui-args", default="", metavar="ARGS",
                       help="more arguments for its main.py, in one string with = (e.g. --comfyui-args=\"--lowvram\")")
    local.add_argument("--startup-timeout", type=float, default=300.0, metavar="S", help="seconds to wait for it (300)")
    parser.add_argument("--server-wait", type=float, default=600.0, metavar="S",
                        help="keep waiting for a server that stopped answering this long before giving up (600)")


def _defaults(args: argparse.Namespace) -> dict:
    from hellomeme_core.batch.jobs import SETTINGS

    return {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}


def _say_error(args: argparse.Namespace, message: str) -> None:
    if args.json:
        import json

        print(json.dumps({"event": "error", "error": message}), flush=True)
    print(f"error: {message}", file=sys.stderr)


def _load_jobs(args: argparse.Namespace) -> list:
    from hellomeme_core.batch.errors import JobsFileError
    from hellomeme_core.batch.jobs import check_settings, jobs_from_folders, read_jobs_file

    defaults = _defaults(args)
    _, problems = check_settings(defaults)
    if problems:
        raise JobsFileError("command line", None, "; ".join(problems))
    if args.jobs and (args.references or args.drivings):
        raise JobsFileError("command line", None, "give a jobs file or --references/--drivings, not both")
    if args.jobs:
        return read_jobs_file(args.jobs, defaults)
    if args.references and args.drivings:
        return jobs_from_folders(args.references, args.drivings, args.pair_by_name, defaults)
    raise JobsFileError("command line", None, "no jobs: give a JOBS file (.csv/.jsonl) or --references DIR --drivings DIR")


async def _run_batch(args, jobs, workflow, store, reporter, server_url, local):
    from hellomeme_core.batch.client import ComfyClient
    from hellomeme_core.batch.runner import BatchRunner, RunnerOptions, install_signal_handlers

    options = RunnerOptions(max_queued=args.max_queued, retry_failed=args.retry_failed, server_wait=args.server_wait,
                            fidelity=getattr(args, "fidelity", False), identity_pack=getattr(args, "identity_pack", None))
    async with ComfyClient(server_url, store.client_id) as client:
        runner = BatchRunner(jobs, workflow, client, store, reporter, Path(args.out), options, local)
        task = asyncio.current_task()
        install_signal_handlers(runner, task)
        return await runner.run()


def run(args: argparse.Namespace) -> int:
    from hellomeme_core.batch.errors import BatchError, LocalServerError, ServerUnavailable
    from hellomeme_core.batch.local_server import DEFAULT_URL, LocalComfyUI, answers, find_comfyui_root
    from hellomeme_core.batch.progress import JsonReporter, TerminalReporter
    from hellomeme_core.batch.report import summary_table
    from hellomeme_core.batch.runner import ServerGaveUp
    from hellomeme_core.batch.state import StateStore
    from hellomeme_core.batch.workflow import Workflow, shipped_workflow_path

    from hellomeme_core.errors import HelloMemeError
    from hellomeme_core.report.videos import identity_pack

    out = Path(args.out)
    try:
        jobs = _load_jobs(args)
        workflow = Workflow.load(args.workflow or shipped_workflow_path())
        # a missing insightface pack is said before any server starts or job runs
        args.identity_pack = (identity_pack(getattr(args, "insightface", None), getattr(args, "pack", "antelopev2"))
                              if getattr(args, "fidelity", False) else None)
        store = StateStore(out)
        store.lock()
        store.load()
    except HelloMemeError as exc:  # BatchError, and a missing insightface pack
        _say_error(args, str(exc))
        return 2
    reporter = JsonReporter() if args.json else TerminalReporter()
    local = None
    try:
        server_url = args.server
        if server_url == "auto":
            local = LocalComfyUI.adopt(out, extra_args=args.comfyui_args, startup_timeout=args.startup_timeout)
            if local is not None:  # started by an earlier run of this batch that was killed: ours to stop
                server_url = local.url
                reporter.event("server_adopted", url=server_url, pid=local.pid, log=str(local.log_path))
            elif answers(DEFAULT_URL):
                server_url = DEFAULT_URL
            else:
                local = LocalComfyUI(find_comfyui_root(args.comfyui), out / "comfyui.log",
                                     extra_args=args.comfyui_args, startup_timeout=args.startup_timeout)
                reporter.event("server_starting", root=str(local.root), log=str(local.log_path))
                local.start()
                server_url = local.url
                reporter.event("server_started", url=server_url, pid=local.pid, log=str(local.log_path))
        elif not any(answers(server_url, timeout=3.0) for _ in range(3)):
            raise ServerUnavailable(f"nothing answers at {server_url} (is ComfyUI running there? --server auto "
                                    "starts one)")
        outcome = asyncio.run(_run_batch(args, jobs, workflow, store, reporter, server_url, local))
    except (LocalServerError, ServerUnavailable, ServerGaveUp) as exc:
        _say_error(args, str(exc))
        return 3
    except BatchError as exc:
        _say_error(args, str(exc))
        return 2
    except (KeyboardInterrupt, asyncio.CancelledError):
        _say_error(args, "stopped at once (second Ctrl-C); run the same command again to go on")
        return 130
    finally:
        if local is not None:
            local.stop()
            reporter.event("server_stopped", url=local.url)
        reporter.close()
        store.unlock()
    if not args.json:
        import json

        report = json.loads(outcome.report_path.read_text(encoding="utf-8"))
        print(summary_table(report, shutil.get_terminal_size((120, 20)).columns))
        print(f"report: {outcome.report_path}")
        if outcome.interrupted:
            print("stopped by Ctrl-C: run the same command again to go on", file=sys.stderr)
    if outcome.interrupted:
        return 130
    return 1 if outcome.counts.get("failed", 0) or outcome.counts.get("cancelled", 0) else 0
