"""
Replay: a stored message handled again, on purpose.

A delivery of a message that is finished is answered from its record, and
its view does not run: that is what makes the MTA's redelivery harmless. A
person who has fixed a view, or changed the mailconf, sometimes wants the
opposite for one message: to run it again through today's mailconf.
:func:`replay` does that through the one dispatch core, as a transport does
(its transport is "replay", or "reroute" for another address), and asks the
store to run the view of that one message although it is finished.

The request is a context variable holding the idempotency keys to run
again. It is set only around that dispatch and read where the store decides
(:func:`mailserver.store.handler.process` and its ``_defer``), so no other
message, thread or process sees it, and nothing is written beforehand that
a crash could leave behind. What the run records:

- a final outcome replaces the record (status, outcome, route), as any
  run's does;
- a temporary failure of a message that was finished leaves its record as
  it was (that run's work committed; this one's was rolled back) and adds
  the attempt with its error;
- the attempt's transport says "replay" or "reroute".

A message that is not finished (deferred, say, because its view had a bug)
needs no such request: any delivery runs it, and so does this one.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from ..handlers import Result
    from .models import InboundMessage

_rerun: ContextVar[frozenset[str]] = ContextVar("mailserver_store_rerun", default=frozenset())


def requested(inbound: InboundMessage) -> bool:
    """Whether the dispatch under way is a deliberate replay of ``inbound``."""
    return inbound.idempotency_key in _rerun.get()


@dataclass
class Replayed:
    """What a replay did."""

    result: Result
    # The row the run was recorded on: the message itself, or for a reroute
    # the message for the other address (None if the store could not write one).
    inbound: InboundMessage | None
    # The message was finished before: its view ran again on purpose.
    reran: bool


def replay(inbound: InboundMessage, recipient: str | None = None) -> Replayed:
    """
    Dispatch the stored message again, as stored, to its recipient or to
    ``recipient`` (a reroute: the message for that address is another row,
    whose original recipient is this one's), through today's mailconf.
    Raises FileNotFoundError when the raw message is gone from the storage.
    """
    from ..transport import deliver
    from .keys import fingerprint
    from .models import InboundMessage

    target = recipient or inbound.recipient
    rerouted = target != inbound.recipient
    envelope = dataclasses.replace(
        inbound.envelope(),
        recipient=target,
        original_recipient=inbound.recipient if rerouted else inbound.original_recipient,
        # No MTA queue holds it now.
        queue_id="",
        transport="reroute" if rerouted else "replay",
    )
    rows = InboundMessage.objects.using(inbound._state.db)
    with inbound.open_raw() as raw:
        key = fingerprint(raw).key(target)
        before = rows.filter(idempotency_key=key).values_list("status", flat=True).first()
        token = _rerun.set(_rerun.get() | {key})
        try:
            [result] = deliver(raw, envelope, [target])
        finally:
            _rerun.reset(token)
    return Replayed(
        result=result,
        inbound=rows.filter(idempotency_key=key).first(),
        reran=before in InboundMessage.FINISHED,
    )
