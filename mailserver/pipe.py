"""
django-mailpipe: the command a mail server's pipe transport runs, once per
message.

What Postfix and Exim do with a pipe's exit status decides whether a message
is delivered, bounced to its sender, or kept and retried, so this module is
written around one rule: only the sender's faults bounce. Anything that goes
wrong on our side (broken settings, a bug in a view, the database, a signal,
running out of time) exits 75, EX_TEMPFAIL, the one status both MTAs defer on.

It stays cheap to start: importing it loads neither Django nor the email
package. Arguments are checked and the message is read first; Django is set
up only when there is a message to dispatch.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
from collections.abc import Sequence

import click

from . import __version__
from .status import EX_TEMPFAIL, Outcome


class Stop(BaseException):
    """
    Raised by the signal and deadline handlers. A BaseException, so that no
    ``except Exception`` in a view or in the dispatch core swallows it.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Failure(Exception):
    """Ends the run with an outcome before anything is dispatched."""

    def __init__(self, outcome: Outcome, text: str | None = None):
        super().__init__(text)
        self.outcome = outcome
        self.text = text


def envelope_recipients(
    sender: str | None, recipients: Sequence[str], environ
) -> tuple[str | None, list[str], str]:
    """
    Options first, then the variables Exim sets for a pipe command; with
    neither, the recipient is left to the headers (see EmailRequest).
    """
    from .envelope import from_exim_environ

    recipients = [r for r in recipients if r]
    queue_id = ""
    if not recipients:
        env_sender, recipients, queue_id = from_exim_environ(environ)
        if sender is None:
            sender = env_sender
    return sender, recipients or [""], queue_id


def setup_django(settings_module: str | None, pythonpath: str | None) -> None:
    if pythonpath and pythonpath not in sys.path:
        sys.path.insert(0, pythonpath)
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise Failure(
            Outcome.MISCONFIGURED,
            "no Django settings: pass --settings or set DJANGO_SETTINGS_MODULE",
        )
    import django

    try:
        django.setup()
    except Exception as exc:
        from .diagnose import settings_hint

        text = f"Django settings failed to load: {type(exc).__name__}: {exc}"
        raise Failure(Outcome.MISCONFIGURED, text + settings_hint(exc, pythonpath)) from exc
    if _gc_paused:
        # What start-up built lives until the process ends: keep the
        # collector from walking it again and again while the view runs.
        gc.freeze()
        gc.enable()


def configured_limit(settings_module, pythonpath, max_size):
    """
    The size limit, known before the message is read. Reading a setting
    imports the settings module but does not set Django up.
    """
    if max_size is not None:
        return max_size or None
    if pythonpath and pythonpath not in sys.path:
        sys.path.insert(0, pythonpath)
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    try:
        from .limits import max_message_size

        return max_message_size()
    except Exception:
        return None  # Broken settings are reported once Django is set up.


def _exit_codes_help() -> str:
    lines = ["\b", "Exit status (what Postfix and Exim do with it):"]
    seen = set()
    for outcome in Outcome:
        if outcome.exit_code in seen:
            continue
        same = [o for o in Outcome if o.exit_code == outcome.exit_code]
        seen.add(outcome.exit_code)
        names = ", ".join(f"{o.text} ({o.enhanced})" for o in same)
        action = (
            "delivered"
            if outcome.is_success
            else ("deferred" if outcome.is_temporary else "bounced")
        )
        lines.append(f"  {outcome.exit_code:>3}  {action}: {names}")
    lines += [
        "",
        "A usage error, broken settings, a failing view, a signal or the deadline all "
        "exit 75: the message stays queued and is retried. Any output is one line that "
        "starts with the enhanced status code.",
    ]
    return "\n".join(lines)


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_exit_codes_help(),
)
@click.option("--settings", "settings_module", help="Django settings module.")
@click.option("--pythonpath", help="Directory to add to the Python path.")
@click.option("--sender", default=None, help="Envelope sender; empty for the null sender.")
@click.option("--recipient", "recipients", multiple=True, help="Envelope recipient (repeatable).")
@click.option("--original-recipient", default="", help="The recipient before rewriting.")
@click.option("--queue-id", default="", help="The MTA's queue id, for the logs.")
@click.option("--client-address", default="", help="The SMTP client's address.")
@click.option("--size", type=int, default=None, help="Message size as the MTA counts it.")
@click.option(
    "--max-size",
    type=int,
    default=None,
    help="Largest message in bytes (0: no limit). Default: MAIL_MAX_MESSAGE_SIZE.",
)
@click.option(
    "--deadline",
    type=float,
    default=None,
    help="Seconds before giving up and deferring. Default: MAIL_PIPE_DEADLINE.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where stray output and console logging go. Default: discarded.",
)
@click.option("--dry-run", is_flag=True, help="Resolve the recipients and print the routes.")
@click.option(
    "--check",
    is_flag=True,
    help="Check the installation instead of delivering: run as the pipe user with the "
    "MTA's options, it prints one line per check (interpreter, settings, ROOT_MAILCONF, "
    "database, log file, .pyc files) and exits 0 when all pass.",
)
@click.option(
    "--via",
    default=None,
    metavar="ADDRESS",
    help="Hand the message over LMTP to a running runmailserver (unix:/path or "
    "host:port) instead of dispatching it here; Django is not loaded.",
)
@click.version_option(
    __version__,
    "--version",
    # Given, not looked up: click would import importlib.metadata to find it.
    package_name="django-mailserver",
    message="%(prog)s (django-mailserver) %(version)s",
)
@click.argument("more_recipients", nargs=-1, metavar="[RECIPIENT]...")
def command(**options) -> tuple[Outcome, str]:
    """Deliver the message on standard input to the Django mail views."""
    if options.pop("check"):
        sys.exit(check(options))
    return run(**options)


def check(options: dict) -> int:
    """--check: see mailserver.diagnose."""
    from .diagnose import check_installation

    return check_installation(options)


def run(
    settings_module=None,
    pythonpath=None,
    sender=None,
    recipients=(),
    more_recipients=(),
    original_recipient="",
    queue_id="",
    client_address="",
    size=None,
    max_size=None,
    deadline=None,
    log_file=None,
    dry_run=False,
    via=None,
    stdin=None,
    environ=None,
) -> tuple[Outcome, str]:
    """Everything but the process plumbing: returns (outcome, output line)."""
    environ = os.environ if environ is None else environ
    sender, all_recipients, env_queue_id = envelope_recipients(
        sender, [*recipients, *more_recipients], environ
    )
    if via:
        # The relay mode: before anything reads settings, so no Django loads.
        return relay(
            via,
            stdin,
            sender,
            all_recipients,
            queue_id=queue_id or env_queue_id,
            client_address=client_address,
            max_size=max_size,
            deadline=deadline,
            dry_run=dry_run,
        )
    if dry_run and all(all_recipients):
        # Nothing to learn from the message: routes depend on addresses only.
        setup_django(settings_module, pythonpath)
        return _dry_run(all_recipients)
    from .transport import check_size, decide, deliver, receive, refuse

    limit = configured_limit(settings_module, pythonpath, max_size)
    try:
        raw, read_size = receive(_stdin(stdin), limit)
    except OSError as exc:
        return _cannot_read(exc)
    setup_django(settings_module, pythonpath)
    if deadline is None:
        from .conf import settings

        deadline = settings.MAIL_PIPE_DEADLINE
    if deadline:
        _arm_deadline(deadline)
    from .envelope import Envelope

    envelope = Envelope(
        sender=sender,
        original_recipient=original_recipient,
        queue_id=queue_id or env_queue_id,
        client_address=client_address,
        size=size if size is not None else read_size,
        transport="pipe",
    )
    refusal = check_size(read_size, limit)
    if refusal is not None:
        return decide(refuse(envelope, all_recipients, refusal))
    if dry_run:
        from .request import EmailRequest

        return _dry_run([EmailRequest(raw, envelope).recipient])
    return decide(deliver(raw, envelope, all_recipients))


def relay(
    via: str,
    stdin,
    sender: str | None,
    recipients: Sequence[str],
    *,
    queue_id: str = "",
    client_address: str = "",
    max_size: int | None = None,
    deadline: float | None = None,
    dry_run: bool = False,
) -> tuple[Outcome, str]:
    """
    The relay mode (``--via``): hand the message to a running runmailserver
    over LMTP and answer with what it said. Each recipient's reply stands
    for the table row with its enhanced code (see :class:`~.wire.Reply`),
    and the decisive one is chosen as for a message dispatched here. A
    server that cannot be reached, breaks the protocol or is too slow
    defers, as does our own misconfiguration.
    """
    from .transport import check_size, decide, read_message
    from .wire import parse_endpoint

    def misconfigured(text: str) -> tuple[Outcome, str]:
        return Outcome.MISCONFIGURED, Outcome.MISCONFIGURED.dsn_line(text)

    try:
        endpoint = parse_endpoint(via)
    except ValueError as exc:
        return misconfigured(f"--via: {exc}")
    if dry_run:
        return misconfigured("--dry-run needs Django: it cannot be combined with --via")
    if sender is None:
        # LMTP has no way to say "unknown sender", and <> would make every
        # message a bounce to the views.
        return misconfigured("--via needs the envelope sender: pass --sender")
    recipients = [r for r in recipients if r]
    if not recipients:
        return misconfigured("--via needs the envelope recipients: pass --recipient")
    try:
        raw, size = read_message(_stdin(stdin), max_size or None)
    except OSError as exc:
        return _cannot_read(exc)
    refusal = check_size(size, max_size or None)
    if raw is None or refusal is not None:
        assert refusal is not None
        return refusal.outcome, refusal.outcome.dsn_line(str(refusal))
    if deadline is None:
        from .conf import DEFAULTS  # Only the dict: reading it loads no Django.

        deadline = DEFAULTS["MAIL_PIPE_DEADLINE"]
    from .lmtp_client import send

    try:
        replies = send(
            endpoint,
            raw,
            sender,
            recipients,
            queue_id=queue_id,
            client_address=client_address,
            timeout=deadline or None,
        )
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        outcome = Outcome.TEMPORARY_FAILURE
        return outcome, outcome.dsn_line(f"mail server at {endpoint} unavailable: {reason}")
    return decide(replies)


def _stdin(stdin):
    if stdin is not None:
        return stdin
    if sys.stdin is None:  # file descriptor 0 was closed
        raise OSError("no standard input")
    return sys.stdin.buffer


def _cannot_read(exc: OSError) -> tuple[Outcome, str]:
    outcome = Outcome.TEMPORARY_FAILURE
    return outcome, outcome.dsn_line(f"cannot read the message: {exc}")


def _dry_run(recipients) -> tuple[Outcome, str]:
    from .exceptions import BadAddressSignature, MailException, RecipientNotFound
    from .handlers import Result
    from .resolvers import resolve
    from .transport import decide

    lines, results = [], []
    for recipient in recipients:
        try:
            match = resolve(recipient)
        except (RecipientNotFound, BadAddressSignature) as exc:
            refusal: MailException = exc
            if isinstance(exc, RecipientNotFound):
                refusal = RecipientNotFound(address=recipient)
            results.append(Result(refusal.outcome, str(refusal), recipient=recipient))
            lines.append(results[-1].dsn_line())
            continue
        results.append(Result(Outcome.DELIVERED, recipient=recipient))
        lines.append(
            f"<{recipient}> -> {match.view_name} args={match.args!r} kwargs={match.kwargs!r}"
        )
    outcome, _ = decide(results)
    return outcome, "\n".join(lines)


def _arm_deadline(seconds: float) -> None:
    def expired(signum, frame):
        raise Stop(f"gave up after {seconds:g} s; will retry")

    signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def _on_signal(signum, frame):
    raise Stop(f"interrupted by {signal.Signals(signum).name}; will retry")


def _redirect_output(log_file: str | None) -> int:
    """
    Point file descriptors 1 and 2 at the log file (or nowhere) for the rest
    of the run, and return a copy of the real stdout for the one line the MTA
    is to read: a warning printed first would hide the status code from
    Postfix, and a view's print() must not reach a bounce.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    real_stdout = os.dup(1)
    target = os.open(log_file or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)
    return real_stdout


_gc_paused = False


def main(argv: Sequence[str] | None = None, prog_name: str = "django-mailpipe") -> None:
    """The console script: parse, run, exit with the table's status."""
    # One short-lived process per message: the cyclic garbage collector
    # would only walk the objects of the imports over and over (about 10 ms
    # during start-up) and at exit (about 40 ms), for memory the process is
    # about to give back anyway. It is off until Django is set up, and what
    # exists then is frozen; see benchmarks/pipe.py.
    global _gc_paused
    _gc_paused = True
    gc.disable()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    real_stdout = report = error = None
    started = False
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv, prog_name)
        if options.pop("check"):
            sys.exit(check(options))
        started = True
        if not options["dry_run"]:
            report = _report_for_a_person(options["log_file"])
            real_stdout = _redirect_output(options["log_file"])
        outcome, line = run(**options)
    except Failure as exc:
        outcome, line = exc.outcome, exc.outcome.dsn_line(exc.text)
        if (error := exc.__cause__) is not None:
            _log_exception(error)
    except Stop as exc:
        outcome, line = Outcome.TEMPORARY_FAILURE, Outcome.TEMPORARY_FAILURE.dsn_line(exc.text)
    except SystemExit:
        if not started:  # --help
            raise
        outcome = Outcome.TEMPORARY_FAILURE
        line = outcome.dsn_line("internal error: SystemExit")
    except BaseException as exc:  # noqa: BLE001 - nothing may reach the MTA as a traceback
        outcome = Outcome.TEMPORARY_FAILURE
        line = outcome.dsn_line(f"internal error: {type(exc).__name__}")
        _log_exception(exc)
        error = exc
    # From here on, nothing may interrupt the one line and the exit status.
    signal.setitimer(signal.ITIMER_REAL, 0)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(signum, signal.SIG_IGN)
    if report is not None:
        line = report.explain(outcome, line, error)
    _write(real_stdout, line)
    gc.freeze()  # nothing left worth collecting before exit
    sys.exit(outcome.exit_code)


def parse_args(args: Sequence[str], prog_name: str = "django-mailpipe") -> dict:
    try:
        ctx = command.make_context(prog_name, list(args))
    except click.exceptions.Exit as exc:  # --help or --version was printed
        raise SystemExit(exc.exit_code) from None
    except click.ClickException as exc:
        # A usage error is in the MTA's configuration, not in the sender's
        # message: keep the mail queued until it is fixed.
        raise Failure(Outcome.MISCONFIGURED, f"usage error: {exc.format_message()}") from None
    return ctx.params


def _report_for_a_person(log_file: str | None):
    """
    Standard output is a terminal: a person runs this by hand, and a
    deferral will name its exception (see mailserver.diagnose). The MTA
    never gets a terminal, nor more than its one line.
    """
    try:
        if not os.isatty(1):
            return None
        from .diagnose import DeferralReport

        return DeferralReport(log_file)
    except Exception:
        return None


def _log_exception(exc: BaseException) -> None:
    try:
        import logging

        logging.getLogger("mailserver.pipe").error(
            "django-mailpipe failed", exc_info=(type(exc), exc, exc.__traceback__)
        )
    except BaseException:
        pass


def _write(fd: int | None, line: str) -> None:
    """
    The one line for the MTA. It ends without a line break, which Postfix
    would fold into a trailing space in its log and bounce; on a terminal,
    for the person who ran it by hand, it ends with one.
    """
    if not line:
        return
    try:
        terminal = os.isatty(1 if fd is None else fd)
    except OSError:
        terminal = False
    data = (line.rstrip("\n") + ("\n" if terminal else "")).encode("utf-8", "replace")
    try:
        if fd is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            os.write(fd, data)
    except OSError:
        pass


if __name__ == "__main__":
    main()


__all__ = ["EX_TEMPFAIL", "main", "run"]
