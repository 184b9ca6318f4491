"""
What django-mailpipe tells a person, as opposed to a mail server.

The MTA reads one short line and an exit status, and the sender of a
bounced message may read that line too, so it never carries our exception
or a path on this machine. A person who runs the pipe by hand, at a
terminal, or who runs ``django-mailpipe --check`` as the pipe's user while
setting it up, is owed more: which exception deferred the message and where
its traceback went, or which part of the installation the pipe user cannot
use and how to fix it.

Loaded only for those people: the MTA's runs never import this module.
"""

from __future__ import annotations

import traceback

from .status import Outcome

# --------------------------------------------------------------------------
# a deferral, explained at a terminal


class DeferralReport:
    """
    Collects the exceptions that defer a message during one run, to name
    them under the status line when that line goes to a terminal.

    Exceptions a view or a middleware raise are caught by the dispatch core,
    which sends ``got_message_exception``; the report listens for it. What
    the pipe catches itself is handed to :meth:`explain`.
    """

    def __init__(self, log_file: str | None):
        from .signals import got_message_exception

        self.log_file = log_file
        self.exceptions: list[BaseException] = []
        got_message_exception.connect(self._record, weak=False, dispatch_uid=id(self))

    def _record(self, sender, exception=None, **kwargs) -> None:
        if exception is not None:
            self.exceptions.append(exception)

    def explain(self, outcome: Outcome, line: str, error: BaseException | None = None) -> str:
        """The status line, followed by what deferred the message, if known."""
        if error is not None:
            self.exceptions.append(error)
        if not outcome.is_temporary or not self.exceptions:
            return line
        lines = [line]
        for exc in self.exceptions:
            lines.append(f"  {type(exc).__name__}: {exc}{_where(exc)}")
        if self.log_file:
            lines.append(
                f"  The traceback is in {self.log_file}, unless your LOGGING sends the "
                "mailserver loggers elsewhere."
            )
        else:
            lines.append(
                "  For the traceback, run again with --log-file FILE (or see where your "
                "LOGGING sends the mailserver loggers)."
            )
        return "\n".join(lines)


def _where(exc: BaseException) -> str:
    """The innermost frame in a real file: where to start reading."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    if not frames:
        return ""
    return f" (at {frames[-1].filename}, line {frames[-1].lineno})"
