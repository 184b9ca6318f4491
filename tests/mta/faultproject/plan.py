"""
Which faults strike which message, and the ledger of what happened.

The faults are a function of the run's seed and the message's number alone,
so a run can be repeated exactly, and the driver (tests/mta/faults.py) and
the project's processes agree on them without talking. This module imports
nothing from Django: the driver imports it too.

The ledger is a directory of small files that every process of a run (the
pipe, runmailserver, sendreplies) writes to *outside* any database
transaction: how many times the view ran for a message, which kills were
claimed, which replies left. A rolled-back transaction cannot hide an attempt
from it, and a killed process has already written what it did.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

# The header that carries a message's number, in the message and its reply.
NUMBER_HEADER = "X-Fault-Number"

# Messages are taken in blocks of BLOCK consecutive numbers; in each block,
# so many are struck by each fault, at places drawn from the seed: exact
# rates (10%, 5%, 5%) at any multiple of BLOCK, without a pattern.
BLOCK = 20
RAISES_PER_BLOCK = 2
KILLS_PER_BLOCK = 1
RESENDS_PER_BLOCK = 1
# Of the attempts at sending a reply, drawn one by one.
SEND_FAIL_PERCENT = 20

# Where a process is killed with SIGKILL, once per message chosen for it;
# block after block in this order, so that any five blocks strike each.
KILL_POINTS = {
    "received": "message parsed (and stored), view not run",
    "view": "view wrote its row, transaction not committed",
    "commit": "transaction committed, reply not sent",
    "handled": "all done, transport not answered yet",
    "timer": "a thread, a random delay after the message was parsed",
}
# The timer's delay is drawn up to this many seconds: about what a delivery
# takes from its parse to its answer here.
TIMER_MAX_DELAY = 0.08
# How many places after the original a re-sent copy is injected: near enough
# for some copies to be delivered while the original still is.
RESEND_MAX_OFFSET = 60


def percent(per_block: int) -> int:
    return 100 * per_block // BLOCK


def draw(seed: int, *key) -> float:
    """A number in [0, 1) fixed by the seed and the key."""
    digest = hashlib.sha256(":".join(map(str, (seed, *key))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def struck(seed: int, number: int, fault: str, per_block: int) -> bool:
    block, place = divmod(number, BLOCK)
    ranked = sorted(range(BLOCK), key=lambda p: draw(seed, fault, block, p))
    return place in ranked[:per_block]


@dataclass(frozen=True)
class Faults:
    number: int
    view_raises: bool  # on the view's first attempt
    kill: str | None  # a key of KILL_POINTS
    kill_delay: float  # for the "timer" kill
    resend: bool  # injected a second time, with one more Received header
    resend_offset: int

    @classmethod
    def for_message(cls, seed: int, number: int) -> Faults:
        kill = None
        if struck(seed, number, "kill", KILLS_PER_BLOCK):
            points = list(KILL_POINTS)
            kill = points[number // BLOCK % len(points)]
        return cls(
            number=number,
            view_raises=struck(seed, number, "raise", RAISES_PER_BLOCK),
            kill=kill,
            kill_delay=draw(seed, number, "kill-delay") * TIMER_MAX_DELAY,
            resend=struck(seed, number, "resend", RESENDS_PER_BLOCK),
            resend_offset=int(draw(seed, number, "resend-offset") * RESEND_MAX_OFFSET),
        )


def send_fails(seed: int, number: int, attempt: int) -> bool:
    """Whether the outgoing server is down for this attempt at sending this reply."""
    return draw(seed, number, "send", attempt) * 100 < SEND_FAIL_PERCENT


class Ledger:
    """
    Counters, one-time claims and append-only logs in files under ``root``.
    Each write is a single system call on a file opened for appending, or
    made under an exclusive lock, so concurrent processes never lose one.
    """

    def __init__(self, root):
        self.root = Path(root)

    def _path(self, kind: str, name) -> Path:
        folder = self.root / kind
        folder.mkdir(exist_ok=True)
        return folder / str(name)

    def count(self, kind: str, number: int) -> int:
        """One more of ``kind`` for the message; returns how many there have been."""
        fd = os.open(self._path(kind, number), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            total = int(os.read(fd, 32) or b"0") + 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, str(total).encode())
            return total
        finally:
            os.close(fd)

    def claim(self, kind: str, number: int, note: str = "") -> bool:
        """True for the first caller only, across processes."""
        try:
            fd = os.open(self._path(kind, number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, note.encode())
        finally:
            os.close(fd)
        return True

    def append(self, log: str, entry: dict) -> None:
        line = (json.dumps(entry, sort_keys=True) + "\n").encode()
        fd = os.open(self._path("logs", log), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    # Reading, for the driver.

    def counts(self, kind: str) -> dict[int, int]:
        folder = self.root / kind
        if not folder.is_dir():
            return {}
        return {int(p.name): int(p.read_text() or 0) for p in folder.iterdir()}

    def claims(self, kind: str) -> dict[int, str]:
        folder = self.root / kind
        if not folder.is_dir():
            return {}
        return {int(p.name): p.read_text() for p in folder.iterdir()}

    def entries(self, log: str) -> list[dict]:
        path = self.root / "logs" / log
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]
