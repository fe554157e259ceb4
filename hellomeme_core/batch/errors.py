"""Errors of the batch command. All are :class:`HelloMemeError` subclasses with messages meant for the person
running the batch (what is wrong, where, how to fix it); none names a ComfyUI node class of ours as the culprit
unless the server said so."""
from __future__ import annotations

from hellomeme_core.errors import HelloMemeError


class BatchError(HelloMemeError):
    """Base of the batch command's errors."""


class JobsFileError(BatchError):
    """The jobs file (or the folders given instead) cannot be read as a list of jobs; names the line."""

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source} line {line}" if line is not None else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.line = line
        self.reason = reason


class WorkflowError(BatchError):
    """The workflow file is not an API-format workflow the batch can fill in (or a job cannot be put into it)."""


class ServerUnavailable(BatchError):
    """The server did not answer (connection refused or dropped, timeout, HTTP 5xx): worth trying again."""


class ServerAnswerError(BatchError):
    """The server answered a request with an error that trying again will not fix (HTTP 4xx)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class PromptRejected(BatchError):
    """``POST /prompt`` refused a job's prompt (validation): the message is the server's, per node."""

    def __init__(self, message: str, node_errors: dict, queued: bool = False) -> None:
        super().__init__(message)
        self.node_errors = node_errors
        self.queued = queued  # the server queued the part that validated: the caller must take it out


class LocalServerError(BatchError):
    """A local ComfyUI could not be found, started or reached."""


class BatchLocked(BatchError):
    """Another batch process is already working in the output folder."""
