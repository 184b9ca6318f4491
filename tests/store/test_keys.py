"""The idempotency key: what makes two deliveries the same message."""

import hashlib
import io

import pytest

from mailserver.store.keys import fingerprint

MESSAGE = (
    b"From: Ann <ann@example.org>\n"
    b"To: help@desk.example.com\n"
    b"Subject: Printer\n"
    b"Date: Tue, 1 Dec 2026 10:00:00 +0000\n"
    b"Message-ID: <m1@example.org>\n"
    b"\n"
    b"It is on fire.\n"
)


def key(raw, recipient="help@desk.example.com"):
    return fingerprint(raw).key(recipient)


class Trickle(io.RawIOBase):
    """A file that hands out one byte per read: every boundary falls somewhere."""

    def __init__(self, data):
        self.data = io.BytesIO(data)

    def readable(self):
        return True

    def seek(self, *args):
        return self.data.seek(*args)

    def read(self, size=-1):
        return self.data.read(1)


def test_identical_bytes_have_one_key():
    assert key(MESSAGE) == key(bytes(MESSAGE))


@pytest.mark.parametrize(
    "trace",
    [
        b"Received: from mx.example.org (mx.example.org [192.0.2.1])\n"
        b"\tby mail.example.com (Postfix) with ESMTP id 4QX1\n"
        b"\tfor <help@desk.example.com>; Tue, 1 Dec 2026 10:00:05 +0000 (UTC)\n",
        b"Return-Path: <ann@example.org>\n",
        b"Delivered-To: help@desk.example.com\nX-Original-To: help@desk.example.com\n",
        b"Authentication-Results: mail.example.com; spf=pass smtp.mailfrom=example.org\n",
        b"X-Spam-Status: No, score=-0.1\nX-Spam-Checker-Version: SpamAssassin 4.0\n",
        b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.com; s=a; b=abc\n",
        b"received: lower-case names are the same field\n",
    ],
)
def test_trace_fields_added_on_the_way_do_not_count(trace):
    assert key(trace + MESSAGE) == key(MESSAGE)


def test_trace_fields_anywhere_in_the_header_section_do_not_count():
    moved = MESSAGE.replace(b"Subject:", b"Received: from elsewhere\n  by us\nSubject:")
    assert key(moved) == key(MESSAGE)


def test_line_endings_and_trailing_line_breaks_do_not_count():
    assert key(MESSAGE.replace(b"\n", b"\r\n")) == key(MESSAGE)
    assert key(MESSAGE + b"\n\n") == key(MESSAGE)
    assert key(MESSAGE.rstrip(b"\n")) == key(MESSAGE)


@pytest.mark.parametrize(
    "change",
    [
        (b"It is on fire.", b"It is on fire!"),
        (b"Subject: Printer", b"Subject: Printer again"),
        (b"Date: Tue, 1 Dec 2026 10:00:00", b"Date: Tue, 1 Dec 2026 10:00:01"),
        # Not trace fields, though their names start like one.
        (b"Subject: Printer\n", b"Subject: Printer\nReceived-By: the desk\n"),
        (b"Subject: Printer\n", b"Subject: Printer\nX-Original-Tag: 1\n"),
        # A trace field's name in the body is text of the body.
        (b"It is on fire.", b"Received: from me\nIt is on fire."),
        # Line breaks within the message count; only those at its end do not.
        (b"It is on fire.", b"It is\non fire."),
    ],
)
def test_what_the_sender_wrote_counts(change):
    assert key(MESSAGE.replace(*change)) != key(MESSAGE)


def test_two_messages_sharing_a_message_id_have_two_keys():
    other = MESSAGE.replace(b"It is on fire.", b"Never mind, it is out.")
    assert b"<m1@example.org>" in other
    assert key(other) != key(MESSAGE)


def test_the_recipient_counts_normalised():
    assert key(MESSAGE, "help@desk.example.com") != key(MESSAGE, "sales@desk.example.com")
    # A subaddress is part of the recipient: ticket+1 and ticket+2 are two.
    assert key(MESSAGE, "ticket+1@desk.example.com") != key(MESSAGE, "ticket+2@desk.example.com")
    # The domain's case and spelling, and angle brackets, are not.
    assert key(MESSAGE, "<help@DESK.example.com>") == key(MESSAGE, "help@desk.example.com")
    assert key(MESSAGE, "help@xn--bcher-kva.example") == key(MESSAGE, "help@bücher.example")


def test_chunk_boundaries_do_not_count():
    message = b"Received: x\r\n\ty\r\n" + MESSAGE.replace(b"\n", b"\r\n") + b"\r"
    assert fingerprint(Trickle(message)).content == fingerprint(message).content
    assert key(Trickle(MESSAGE)) == key(MESSAGE)


def test_a_file_and_bytes_give_the_same_digests():
    from_file = fingerprint(io.BytesIO(MESSAGE))
    assert from_file == fingerprint(MESSAGE)
    assert from_file.raw == hashlib.sha256(MESSAGE).hexdigest()
    assert from_file.size == len(MESSAGE)


def test_the_raw_digest_is_of_the_exact_bytes():
    resent = b"Received: from elsewhere\n" + MESSAGE
    assert fingerprint(resent).content == fingerprint(MESSAGE).content
    assert fingerprint(resent).raw != fingerprint(MESSAGE).raw


def test_a_header_section_without_end_and_a_header_line_without_a_colon():
    assert key(b"Subject: x") == key(b"Subject: x\n")
    assert key(b"Received: y\nSubject: x") == key(b"Subject: x")
    assert key(b"not a field\nSubject: x\n\nbody") != key(b"Subject: x\n\nbody")
    long_line = b"x" * 100_000 + b"\n\nbody"
    assert key(long_line) != key(b"\nbody")


def test_the_trace_fields_are_a_setting(settings):
    settings.MAIL_STORE_TRACE_HEADERS = ["Received", "X-Desk-*"]
    assert key(b"X-Desk-Score: 5\n" + MESSAGE) == key(MESSAGE)
    assert key(b"Delivered-To: a@b\n" + MESSAGE) != key(MESSAGE)


def test_the_key_is_sha256_of_version_recipient_and_content():
    content = fingerprint(MESSAGE).content
    expected = hashlib.sha256(b"mailserver-store/1\nhelp@desk.example.com\n" + content).hexdigest()
    assert key(MESSAGE) == expected
