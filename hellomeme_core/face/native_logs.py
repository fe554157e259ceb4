"""Keep mediapipe's native start-up log lines off the terminal, and nothing else.

mediapipe 0.10.21 logs from C++ (TFLite's "Created TensorFlow Lite XNNPACK delegate", absl's "All log
messages before absl::InitializeLog()", then ``W0000 ... inference_feedback_manager.cc`` lines) by
writing to file descriptor 2 itself. GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL and Python's absl
verbosity do not reach that logger, so the lines are caught at the descriptor while mediapipe runs
and everything that is not one of them (our own warnings, a real error) is written back afterwards.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

# Informational and warning lines only: absl/glog-formatted error (E) and fatal (F) lines still show.
NATIVE_NOISE = re.compile(
    r"(?:INFO: Created TensorFlow Lite"
    r"|WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] )"
)
_STDERR_FD = 2


def is_native_noise(line: str) -> bool:
    """Whether one stderr line is one of the native informational / warning lines."""
    return NATIVE_NOISE.match(line) is not None


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Run the body with file descriptor 2 caught; on exit write back every line but the native noise.

    The caught lines come back when the body ends (also when it raises), so our own stderr output
    inside the body is delayed, never lost. Where descriptor 2 cannot be duplicated (no stderr at all),
    the body runs untouched.
    """
    try:
        saved = os.dup(_STDERR_FD)
    except OSError:
        yield
        return
    _flush_stderr()
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), _STDERR_FD)
        try:
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, _STDERR_FD)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if not is_native_noise(line))
            if kept:
                sys.stderr.write(kept)
                _flush_stderr()


def _flush_stderr() -> None:
    """Push Python's buffered stderr text to the descriptor, so it lands on the right side of a swap."""
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no stderr, or a closed one
        pass
