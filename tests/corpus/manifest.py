"""
What each message in tests/corpus/ must become, for tests/hostile/test_corpus.py.

Every file is delivered with the envelope of its Case (by default from
ann@example.org to inspect@example.com, the view that reads every property
of a request) and must end as ``expect``: "delivered" (the view ran and read
everything without an exception, no header value on more than one line) or
the enhanced status code of a permanent refusal.

``facts`` are what the request must show for a delivered message, by the
name of a property of EmailRequest (see tests/hostile/test_corpus.py for the
few composite ones: ``header:Name``, ``attachments``, ``dsn``,
``returned_subject``). A str value given as ``("~", text)`` must contain
``text``; a list given as ``("~", [...])`` must hold those items; anything
else must be equal.

A case whose delivery fails today because of a known defect in mailserver/
says why in ``xfail``: its tests are then expected to fail, strictly, so
that a fix is noticed and the mark removed.

All files are written for this project, except dsn-postfix.eml and
dsn-exim.eml: real bounces captured from the Postfix 3.7 and Exim 4.96
instances of tests/mta by capture_dsns.py (an unknown recipient, so
django-mailpipe exited 67 with 5.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Case:
    expect: str = "delivered"
    sender: str | None = "ann@example.org"
    recipient: str = "inspect@example.com"
    facts: dict = field(default_factory=dict)
    xfail: str = ""


def contains(value):
    return ("~", value)


CASES: dict[str, Case] = {
    # -- the baseline and line ends ---------------------------------------------
    "plain.eml": Case(
        facts={
            "subject": "The baseline: nothing odd here",
            "from_email": "ann@example.org",
            "to": ["inspect@example.com"],
            "cc": ["bo@example.org"],
            "reply_to": ["desk@example.org"],
            "message_id": "<plain-1@example.org>",
            "date": "2026-11-26T10:00:00+01:00",
            "get_recipient_display": "Inspector <inspect@example.com>",
            "text": contains("This one has nothing broken."),
            "attachments": [],
        }
    ),
    "crlf-line-endings.eml": Case(
        facts={"subject": "Line ends as SMTP sends them", "text": contains("as on the wire.")}
    ),
    "mixed-line-endings.eml": Case(
        facts={"subject": "Three kinds of line end", "text": contains("CR LF here.")}
    ),
    "mbox-from-line.eml": Case(
        facts={"subject": "Behind an mbox separator", "from_email": "ann@example.org"}
    ),
    # -- header sections: missing, empty, broken --------------------------------
    "no-header-section.eml": Case(
        facts={"subject": "", "from_email": "", "text": contains("no header section at all")}
    ),
    "headers-only.eml": Case(facts={"subject": "Headers and nothing else", "get_body": ""}),
    "empty-body.eml": Case(facts={"subject": "The subject says it all", "get_body": ""}),
    "missing-headers.eml": Case(
        facts={
            "subject": "",
            "from_email": "",
            "to": [],
            "message_id": "",
            "date": None,
            "text": contains("No From, no To"),
        }
    ),
    "duplicate-headers.eml": Case(
        facts={
            "subject": "The first subject",
            "from_email": "ann@example.org",
            "message_id": "<dup-1@example.org>",
            "date": "2026-11-26T10:00:00+01:00",
        }
    ),
    # The first line without a colon ends the header section (as in the email
    # package and in Postfix): what follows it is body.
    "header-without-colon.eml": Case(
        facts={"from_email": "ann@example.org", "text": contains("this line has no colon")}
    ),
    "header-8bit-utf8.eml": Case(
        facts={
            "subject": "Grüße aus Köln — ça va? 你好",
            "from_email": "zoe@example.org",
            "header:From": "Zoë Müller <zoe@example.org>",
        }
    ),
    "header-8bit-latin1.eml": Case(
        facts={
            "subject": "Grüße aus Köln",
            "from_email": "zoe@example.org",
            "text": contains("Grüße."),
        }
    ),
    "unicode-separators.eml": Case(
        facts={
            "subject": "Line separator, next line, form feed, vertical tab",
            "from_email": "ann@example.org",
        }
    ),
    "long-folded-header.eml": Case(
        facts={"subject": contains("A subject folded over many lines folded over many lines")}
    ),
    "nul-bytes.eml": Case(
        facts={"from_email": "ann@example.org", "subject": contains(" in the subject")}
    ),
    # -- charsets and encodings -------------------------------------------------
    "charset-unknown.eml": Case(
        facts={"subject": "nuqneH", "text": contains("A charset nobody has heard of")}
    ),
    "charset-lying-ascii.eml": Case(facts={"text": contains("The charset says ASCII")}),
    "charset-lying-utf8.eml": Case(
        facts={"subject": contains("é and "), "text": contains("été à Noël")}
    ),
    "charset-binary-names.eml": Case(
        facts={"text": contains("escaped quote"), "attachments": contains(["part-1"])}
    ),
    "non-utf8-body.eml": Case(facts={"text": contains("No charset, and bytes")}),
    # Charset names that Python knows as codecs but that decode nothing
    # ('undefined' fails on any input, 'idna' refuses errors="replace", a NUL
    # makes bytes.decode() raise ValueError): each once deferred the message.
    "charset-codec-body.eml": Case(
        facts={"subject": "Body charsets that name codecs, not charsets"},
    ),
    "charset-codec-header.eml": Case(
        facts={"subject": contains("Café")},
    ),
    "charset-codec-filename.eml": Case(
        facts={"text": "See the attachment."},
    ),
    "cte-broken.eml": Case(
        facts={
            "text": contains("Soft break at the very end"),
            "attachments": ["notes.pdf", "short.bin", "x.png", "part-4"],
        }
    ),
    "rfc2047-broken.eml": Case(
        facts={
            "from_email": "ann@example.org",
            "to": ["inspect@example.com"],
            "subject": contains("short padding"),
        }
    ),
    "rfc2047-line-breaks.eml": Case(
        facts={
            "subject": "Hello Bcc: victim@example.net body",
            "to": ["inspect@example.com"],
            "reply_to": ["desk@example.org"],
            "message_id": "",
            # Not the '_victim@example.net?=' that getaddresses() finds in the
            # raw value, whose encoded word holds a colon and an @.
            "from_email": "ann@example.org",
        },
    ),
    # -- MIME structure -----------------------------------------------------------
    "boundary-missing.eml": Case(facts={"subject": "A multipart without a boundary"}),
    "boundary-unterminated.eml": Case(
        facts={"text": "The first part.", "attachments": ["cut.bin"]}
    ),
    "boundary-not-found.eml": Case(facts={"subject": "The boundary is announced but never used"}),
    "boundary-prefix.eml": Case(
        facts={"text": "inner plain", "html": "<p>inner html</p>", "attachments": ["after.txt"]}
    ),
    "boundary-empty.eml": Case(facts={"text": contains("after an empty delimiter")}),
    "multipart-no-parts.eml": Case(facts={"subject": "Preamble and epilogue, nothing between"}),
    "content-type-garbage.eml": Case(facts={"text": contains("without a subtype")}),
    "html-only.eml": Case(
        facts={"text": None, "html": contains("No plain part"), "get_body": contains("<b>this</b>")}
    ),
    # No CR LF, NUL or U+202E left in a name, as Django's
    # MultiPartParser.sanitize_file_name keeps only printable characters.
    "attachment-names-hostile.eml": Case(
        facts={
            "attachments": contains(["passwd", "part-4"]),
            "attachment_names_printable": True,
        },
    ),
    "message-rfc822-attachment.eml": Case(
        facts={
            "subject": "Fwd: Meeting notes",
            "text": contains("Forwarding Bo's notes"),
            "attachments": contains(["notes.csv"]),
        }
    ),
    "message-rfc822-broken.eml": Case(facts={"text": "Three attached messages, all wrong."}),
    "auto-reply.eml": Case(
        facts={
            "subject": "Out of office: The baseline",
            "references": ["<plain-1@example.org>"],
        }
    ),
    # -- addresses ----------------------------------------------------------------------
    "smtputf8-addresses.eml": Case(
        sender="jörg@bücher.example",
        facts={
            "sender": "jörg@bücher.example",
            "from_email": "jörg@bücher.example",
            "to": ["检查@例子.测试", "inspect@example.com"],
            "cc": ["δοκιμή@παράδειγμα.δοκιμή"],
            "reply_to": ["андрей@пример.испытание"],
        },
    ),
    "idn-domains.eml": Case(
        sender="jorg@xn--bcher-kva.example",
        facts={
            "from_email": "jorg@xn--bcher-kva.example",
            "to": ["inspect@example.com", "mueller@xn--mller-kva.example"],
        },
    ),
    "quoted-local-parts.eml": Case(
        sender='"ann ortiz"@example.org',
        facts={
            "from_email": '"ann ortiz"@example.org',
            "to": contains(["inspect@example.com", '"with@at"@example.org']),
        },
    ),
    "address-comments.eml": Case(
        facts={
            "from_email": "ann@example.org",
            "to": ["inspect@example.com"],
            "cc": ["bo@example.org"],
            "reply_to": ["desk@example.org"],
            "message_id": "<comments-1@example.org>",
            "date": "2026-11-26T10:00:00+01:00",
        }
    ),
    "group-syntax.eml": Case(
        facts={
            "to": [],
            "cc": ["inspect@example.com", "bo@example.org", "solo@example.org"],
            "reply_to": ["a@example.org", "b@example.org"],
        }
    ),
    "address-garbage.eml": Case(facts={"to": contains(["inspect@example.com"])}),
    "date-garbage.eml": Case(facts={"date": None}),
    "date-variants.eml": Case(facts={"date": "2026-11-26T10:00:00-05:00"}),
    "message-id-odd.eml": Case(
        facts={
            "message_id": "",
            "references": contains(["<one@example.org>", "<two@example.org>"]),
        }
    ),
    # -- bounces --------------------------------------------------------------------------
    "dsn-postfix.eml": Case(
        sender="",
        facts={
            "is_bounce": True,
            "subject": "Undelivered Mail Returned to Sender",
            "dsn": [("failed", "5.1.1", "nobody-here@mail.test")],
            "dsn_reporting_mta": "mta-test.localdomain",
            "returned_subject": "Where is my parcel?",
            "dsn_diagnostic_code": "<nobody-here@mail.test>: no such mailbox",
        },
    ),
    "dsn-exim.eml": Case(
        sender="",
        facts={
            "is_bounce": True,
            "subject": "Mail delivery failed: returning message to sender",
            "dsn": [("failed", "5.0.0", "nobody-here@mail.test")],
            "returned_subject": "Where is my parcel?",
        },
    ),
    # A report as Gmail and others shape it: the human part is itself
    # multipart/alternative, the returned message is its headers only, and the
    # envelope sender is not null.
    "dsn-headers-only.eml": Case(
        sender="postmaster@relay.example.net",
        facts={
            "is_bounce": True,
            "dsn": [
                ("failed", "5.2.2", "carol@example.net"),
                ("delayed", "4.4.1", "dave@example.net"),
            ],
            "returned_subject": "Quarterly figures",
            "text": contains("could not be delivered to carol@example.net"),
            "dsn_explanation": contains("could not be delivered to carol@example.net"),
        },
    ),
    "dsn-malformed.eml": Case(sender="", facts={"is_bounce": True}),
    "dsn-no-report-part.eml": Case(sender="", facts={"is_bounce": True, "dsn": None}),
    "bounce-plain-text.eml": Case(
        sender="", facts={"is_bounce": True, "dsn": None, "subject": "failure notice"}
    ),
    # -- nothing to deliver -------------------------------------------------------------
    "empty.eml": Case(expect="5.6.0"),
    "whitespace-only.eml": Case(expect="5.6.0"),
}
