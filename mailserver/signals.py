"""Signals sent by the dispatch core, like Django's request signals."""

from django.dispatch import Signal

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
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


def _connect_database_housekeeping():
    message_started.connect(close_old_connections)
    message_finished.connect(close_old_connections)


_connect_database_housekeeping()
