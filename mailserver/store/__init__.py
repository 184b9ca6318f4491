"""
mailserver.store: inbound mail kept durably, handled exactly once.

Installed (``"mailserver.store"`` in INSTALLED_APPS), it sits between every
transport and the dispatch core: each message is stored before any success
is reported, recognised when it comes again (see :mod:`.keys`), and its view
runs in the transaction that records its outcome and writes its replies to
an outbox, which is sent after the commit. Not installed, nothing of it is
imported.
"""
