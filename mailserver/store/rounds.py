"""The loop behind the store's long-running commands (sendreplies, retrymail)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable


def run_rounds(do_round: Callable[[], None], *, loop: bool, interval: float) -> None:
    """
    Run ``do_round`` once, or with ``loop`` every ``interval`` seconds until
    SIGTERM or SIGINT. A signal lets the round in hand finish: a kill in
    mid-round is what the leases are for, not the normal way out.
    """
    stopping: list[bool] = []
    if loop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.append(True))
    while True:
        do_round()
        if not loop or stopping:
            return
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, interval))
        if stopping:
            return
