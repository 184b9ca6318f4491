"""Signals sent by the dispatch core, like Django's request signals."""

from django.dispatch import Signal

# A message was parsed and is about to go through the middleware; args: request.
message_received = Signal()
# A message is done with; args: request (None if it could not be parsed), result.
message_handled = Signal()
# An exception that names no outcome escaped; the message is deferred.
# Args: request, exception.
got_message_exception = Signal()

# A delivery to a VERP bounce address (mailserver.bounces) failed or is late.
# Args: request, recipient (the address our message went to), permanent (bool:
# stop mailing it), status (the report's RecipientStatus), report (DeliveryReport).
bounce_received = Signal()

# Sent when a transport starts and finishes handling one message for one
# recipient, like request_started and request_finished. Database
# connections past their CONN_MAX_AGE or broken are closed on both, as
# Django does around each HTTP request.
message_started = Signal()
message_finished = Signal()


def _connect_database_housekeeping():
    from django.db import close_old_connections

    message_started.connect(close_old_connections)
    message_finished.connect(close_old_connections)


_connect_database_housekeeping()
