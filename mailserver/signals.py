"""Signals sent by the dispatch core, like Django's request signals."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.dispatch import Signal

if TYPE_CHECKING:  # pragma: no cover
    from django.db.backends.base.base import BaseDatabaseWrapper

#: A message was parsed and is about to go through the middleware.
#: Arguments: ``request``.
message_received = Signal()
#: A message is done with. Arguments: ``request`` (None if it could not be
#: parsed), ``result`` (the :class:`~mailserver.handlers.Result`).
message_handled = Signal()
#: An exception that names no outcome escaped; the message is deferred.
#: Arguments: ``request``, ``exception``.
got_message_exception = Signal()

#: A delivery to a VERP bounce address (:mod:`mailserver.bounces`) failed or
#: is late. Arguments: ``request``, ``recipient`` (the address our message
#: went to), ``permanent`` (bool: stop mailing it), ``status`` (the report's
#: ``RecipientStatus``), ``report`` (the ``DeliveryReport``).
bounce_received = Signal()

#: Sent when a transport starts handling one message for one recipient, like
#: ``request_started``. Arguments: ``envelope``. Database connections past
#: their ``CONN_MAX_AGE`` or broken are closed, as Django does around each
#: HTTP request.
message_started = Signal()
#: Sent when a transport has finished with one message for one recipient,
#: like ``request_finished``; database connections are cleaned again.
message_finished = Signal()


def close_old_connections(**kwargs):
    """
    Django's close_old_connections, except for a connection inside a
    transaction: that transaction is the caller's (a test's, the admin's
    dry run), and closing the connection would end it under the caller.
    """
    for connection in _initialized_connections():
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _initialized_connections() -> list[BaseDatabaseWrapper]:
    """
    What ``connections.all(initialized_only=True)`` returns: the connections
    this thread has set up (used, if only once). Django asks with hasattr(),
    and an alias the thread never used raises AttributeError inside the
    @contextmanager of asgiref's Local. On Python 3.10, contextlib keeps
    that exception's traceback in a reference cycle with its own frame, and
    through it every caller's frame: each message's request lived on until
    the cyclic collector ran (a worker whose views never use the database
    misses twice a message). Caught here, the exception gets a new
    traceback and the cycle is never made. Python 3.11's contextlib no
    longer makes it.
    """
    from django.db import connections

    initialized = getattr(connections, "_connections", None)
    if initialized is None:  # not the ConnectionHandler this knows
        return list(connections.all(initialized_only=True))
    found: list[BaseDatabaseWrapper] = []
    for alias in connections:
        try:
            found.append(getattr(initialized, alias))
        except AttributeError:
            pass
    return found


def _connect_database_housekeeping():
    message_started.connect(close_old_connections)
    message_finished.connect(close_old_connections)


_connect_database_housekeeping()
