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


def _connect_database_housekeeping():
    from django.db import close_old_connections

    message_started.connect(close_old_connections)
    message_finished.connect(close_old_connections)


_connect_database_housekeeping()
