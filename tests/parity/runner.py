"""Run every call of every case in a parity fixture folder and compare with the stored outputs."""
from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator

import torch

from hellomeme_core.errors import HelloMemeError
from tests.parity.fixture import Comparison, FixtureSet, compare, flatten_outputs, resolve_args
from tests.parity.registry import CaseContext, build


def run_call(ctx: CaseContext, call: dict) -> list[Comparison]:
    case = ctx.case
    name = case["name"]
    try:
        fn = build(ctx, call["module"])
        args = resolve_args(ctx.fixtures, case["file"], call["args"])
    except Exception as exc:  # a missing adapter or a loader failure fails the call, never the run
        detail = f"{type(exc).__name__}: {exc}"
        return [Comparison(name, call["name"], "", float("nan"), None, False, detail, "expect_error" in call)]

    if "expect_error" in call:
        return [_run_expect_error(name, call, fn, args)]

    try:
        with torch.no_grad():
            result = fn(**args)
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} [{tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}]"
        return [Comparison(name, call["name"], "", float("nan"), None, False, detail)]

    flat = flatten_outputs(result)
    out: list[Comparison] = []
    for path, stored in call["outputs"].items():
        tol = call.get("tolerance", {}).get(stored, {})
        if path not in flat:
            out.append(Comparison(name, call["name"], path, float("nan"), None, False, f"output {path!r} missing; got {sorted(flat)}"))
            continue
        expected = ctx.fixtures.tensor(case["file"], stored)
        err, atol, ok, detail = compare(flat[path], expected, tol)
        out.append(Comparison(name, call["name"], path, err, atol, ok, detail))
    return out


def _run_expect_error(name: str, call: dict, fn, args) -> Comparison:
    """The official code raises here: ours must either raise a clear HelloMeme error or, where we
    deliberately extend the official range, return finite values of the input's shape."""
    try:
        with torch.no_grad():
            result = fn(**args)
    except HelloMemeError as exc:
        return Comparison(name, call["name"], "", float("nan"), None, True, f"clear error like the official code: {exc}", True)
    except Exception as exc:
        return Comparison(name, call["name"], "", float("nan"), None, False, f"unclear error {type(exc).__name__}: {exc}", True)
    first = next(iter(v for v in args.values() if isinstance(v, torch.Tensor)), None)
    ok = isinstance(result, torch.Tensor) and torch.isfinite(result).all().item() and (
        first is None or result.shape == first.shape
    )
    detail = "official raises; supported here" if ok else "official raises; ours returned a malformed result"
    return Comparison(name, call["name"], "", float("nan"), None, bool(ok), detail, True)


def iter_case_results(fixtures: FixtureSet, pattern: str | None = None) -> Iterator[Comparison]:
    for case in fixtures.cases:
        if pattern and pattern not in case["name"]:
            continue
        if case.get("kind") == "pipeline":  # a whole official video run, through the video sampler's code
            yield from run_pipeline(fixtures, case)
            continue
        ctx = CaseContext(fixtures, case)
        for call in case["calls"]:
            yield from run_call(ctx, call)
        ctx.built.clear()


def run_pipeline(fixtures: FixtureSet, case: dict) -> list[Comparison]:
    """A ``pipeline`` case; a failure to build or run fails the case with its reason, never the run."""
    from tests.parity.pipeline import run_pipeline_case

    try:
        return run_pipeline_case(fixtures, case)
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__}: {exc} [{tb.filename.rsplit('/', 1)[-1]}:{tb.lineno}]"
        return [Comparison(case["name"], "gen_video", "", float("nan"), None, False, detail)]


def main(folder: str, pattern: str | None = None) -> int:
    try:
        fixtures = FixtureSet(folder)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    passed = failed = 0
    start = time.perf_counter()
    for comparison in iter_case_results(fixtures, pattern):
        print(comparison.line(), flush=True)
        passed += comparison.passed
        failed += not comparison.passed
    print(f"# {time.perf_counter() - start:.1f} s")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0
