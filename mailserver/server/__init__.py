"""
``runmailserver``: the mail views behind a long-running LMTP (or SMTP)
server, so that a message costs no process start and no Django set-up.

The protocol is aiosmtpd's (the optional ``server`` extra); the views run
through the same dispatch core as django-mailpipe's, so a view cannot tell
the transports apart, except by ``request.envelope.transport``.

* :mod:`.protocol`: the conversation (DATA, XFORWARD, refusals, 421) and
  the limits on a session (time, junk commands, errors)
* :mod:`.delivery`: RCPT-time resolution, dispatch in worker threads, the
  deadline per message, the log
* :mod:`.workers`: the worker threads, and replacing one stuck in a view
* :mod:`.server`: sockets, allowed networks, sessions, signals, draining
"""

from .server import MailServer

__all__ = ["MailServer"]
