"""Signals sent by the dispatch core, like Django's request signals."""

from django.dispatch import Signal

# A message was parsed and is about to go through the middleware; args: request.
message_received = Signal()
# A message is done with; args: request (None if it could not be parsed), result.
message_handled = Signal()
# An exception that names no outcome escaped; the message is deferred.
# Args: request, exception.
got_message_exception = Signal()
