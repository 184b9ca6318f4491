"""
Warnings for names on their way out, in Django's style: the class says in
which release the old spelling goes, so a project can turn exactly those
into errors (``-W error::mailserver.deprecation.RemovedInMailserver02Warning``).
"""


class RemovedInMailserver02Warning(DeprecationWarning):
    """The name still works in 0.1 and is removed in 0.2."""
