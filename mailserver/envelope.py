"""
The envelope: who sent the message, to whom, and through what.

It is what the mail server knows and the message itself may lie about. A
transport fills it from what it has (command-line options, the environment
Exim gives its pipe commands, the LMTP session); one request is always for
exactly one recipient.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Envelope:
    # "" is the null sender of bounces; None means the transport did not say.
    sender: str | None = None
    recipient: str = ""
    original_recipient: str = ""
    queue_id: str = ""
    client_address: str = ""
    size: int | None = None
    # Which way the message came in: "pipe", "readmail", "lmtp", "smtp", "test".
    transport: str = ""

    def __post_init__(self):
        # "<>" is how SMTP writes the null reverse-path: it is the null sender.
        if self.sender is not None and self.sender.strip() in ("", "<>"):
            object.__setattr__(self, "sender", "")

    def for_recipient(self, recipient: str) -> Envelope:
        return replace(self, recipient=recipient)


def from_exim_environ(environ: Mapping[str, str]) -> tuple[str | None, list[str], str]:
    """
    Sender, recipients and message id from the variables Exim sets for a pipe
    command. Exim 4.96 refuses message data in the command line, so this is
    where its envelope is. RECIPIENT lacks the affixes that the router
    stripped (``local_part_suffix = +*``), so the address is rebuilt from its
    parts. Returns no recipient when the variables are not Exim's.
    """
    local_part = environ.get("LOCAL_PART")
    domain = environ.get("DOMAIN")
    if local_part and domain:
        local = environ.get("LOCAL_PART_PREFIX", "") + local_part
        local += environ.get("LOCAL_PART_SUFFIX", "")
        from .addresses import quote_local_part

        recipients = [f"{quote_local_part(local)}@{domain}"]
    elif environ.get("RECIPIENT"):
        recipients = [environ["RECIPIENT"]]
    else:
        return None, [], ""
    return environ.get("SENDER"), recipients, environ.get("MESSAGE_ID", "")
