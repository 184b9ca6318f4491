#!/usr/bin/env python
"""
Capture one real delivery status notification from Postfix and one from
Exim, for the hostile-input corpus (dsn-postfix.eml, dsn-exim.eml).

Runs the private instances of tests/mta/harness.py (root, Postfix, Exim and
the pipe user needed, as for the end-to-end tests), sends each a message for
an address the test project does not know, so that django-mailpipe exits 67
with "5.1.1", and keeps the bounce the MTA writes back to the sender:

- Postfix: bounces to the test senders' domain go to a pipe(8) service that
  writes each one to a file (the harness itself discards them);
- Exim: the harness already keeps them in an mbox file.

Host names, queue ids and dates are the instances' own; nothing is edited
but the mbox "From " line, which is the mailbox's and not the message's.

    python tests/corpus/capture_dsns.py [OUTPUT_DIR]   # default: tests/corpus
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from tests.mta.harness import (  # noqa: E402
    SENDER_DOMAIN,
    TEST_DOMAIN,
    Exim,
    PipeRuntime,
    Postfix,
    make_message,
    missing_prerequisites,
    new_root,
    pipe_user,
    wait_for,
)

SENDER = f"alice@{SENDER_DOMAIN}"
UNKNOWN = f"nobody-here@{TEST_DOMAIN}"


class CapturingPostfix(Postfix):
    """The harness's Postfix, with bounces to the sender domain kept as files."""

    def configure(self) -> None:
        super().configure()
        self.captured = self.runtime.records / "postfix-bounces"
        self.captured.mkdir()
        shutil.chown(self.captured, pipe_user(), pipe_user())
        transport = self.config_dir / "transport"
        text = transport.read_text()
        discard = f"{SENDER_DOMAIN} discard:"
        if discard not in text:
            raise SystemExit(f"{discard!r} not in the harness's transport map any more")
        transport.write_text(text.replace(discard, f"{SENDER_DOMAIN} capture:"))
        with (self.config_dir / "master.cf").open("a") as master:
            master.write(
                "\n# capture_dsns.py: keep each bounce as a file\n"
                "capture   unix  -       n       n       -       -       pipe\n"
                f"  flags=DR user={pipe_user()}\n"
                f"  argv=/usr/bin/dd of={self.captured}/${{queue_id}}.eml status=none\n"
            )
        import subprocess

        subprocess.run(
            ["/usr/sbin/postmap", "-c", str(self.config_dir), f"hash:{transport}"], check=True
        )


def capture_postfix(root: Path, runtime: PipeRuntime) -> bytes:
    mta = CapturingPostfix(root / "postfix", runtime)
    mta.start()
    try:
        msg = make_message(subject="Where is my parcel?", to=UNKNOWN)
        sub = mta.send(msg, SENDER, [UNKNOWN])
        mta.wait(sub)
        found = wait_for(lambda: sorted(mta.captured.glob("*.eml")), 60, "the Postfix bounce")
        return found[0].read_bytes()
    finally:
        mta.stop()


def capture_exim(root: Path, runtime: PipeRuntime) -> bytes:
    mta = Exim(root / "exim", runtime)
    mta.start()
    try:
        msg = make_message(subject="Where is my parcel?", to=UNKNOWN)
        sub = mta.send(msg, SENDER, [UNKNOWN])
        mta.wait(sub)
        text = wait_for(lambda: mta.bounce_for(sub), 60, "the Exim bounce")
        # bounce_for() splits the mbox at "From ": drop the rest of that line.
        return text.split("\n", 1)[1].encode()
    finally:
        mta.stop()


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    out.mkdir(parents=True, exist_ok=True)
    for mta in ("postfix", "exim"):
        reason = missing_prerequisites(mta)
        if reason:
            print(f"cannot capture: {reason}", file=sys.stderr)
            return 1
    root = new_root("capture")
    try:
        (root / "pipe").mkdir()
        runtime = PipeRuntime(root / "pipe", pipe_user()).build()
        (out / "dsn-postfix.eml").write_bytes(capture_postfix(root, runtime))
        (out / "dsn-exim.eml").write_bytes(capture_exim(root, runtime))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {out / 'dsn-postfix.eml'} and {out / 'dsn-exim.eml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
