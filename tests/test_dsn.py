"""Bounces coming in: RFC 3464 reports parsed for a bounce view."""

import pytest

from mailserver.envelope import Envelope
from mailserver.request import EmailRequest
from mailserver.test import Client

POSTFIX_STYLE = b"""\
Return-Path: <>
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces+t0k3n@lists.example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="B1"

--B1
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--B1
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
X-Postfix-Queue-ID: 4QX1
Arrival-Date: Thu, 26 Nov 2026 10:00:00 +0000 (UTC)

Final-Recipient: rfc822; gone@example.net
Original-Recipient: rfc822;Gone@example.net
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.net
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected

Final-Recipient: rfc822; full@example.net
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full

--B1
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: list@lists.example.com
To: gone@example.net
Subject: Weekly news
Message-ID: <news-1@lists.example.com>

--B1--
"""

DELAY_ONLY = POSTFIX_STYLE.replace(
    b"Action: failed\nStatus: 5.1.1", b"Action: delayed\nStatus: 4.4.1"
)

RETURNED_WHOLE = b"""\
From: Mail Delivery System <Mailer-Daemon@mx.example.org>
To: bounces@example.com
Subject: Mail delivery failed
Content-Type: multipart/report; report-type=delivery-status; boundary=XX

--XX
Content-Type: text/plain

This message was created automatically by mail delivery software.

--XX
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org

Action: failed
Final-Recipient: rfc822;nobody@example.org
Status: 5.0.0

--XX
Content-Type: message/rfc822

From: ann@example.com
To: nobody@example.org
Subject: hello

body
--XX--
"""


def request(raw, sender=""):
    return EmailRequest(raw, Envelope(sender=sender, recipient="bounces+t0k3n@lists.example.com"))


def test_postfix_style_report():
    r = request(POSTFIX_STYLE)
    assert r.is_bounce
    report = r.dsn
    assert report.reporting_mta == "mx.example.net"
    assert report.arrival_date.startswith("Thu, 26 Nov 2026")
    hard, soft = report.recipients
    assert (hard.action, hard.status, hard.final_recipient) == (
        "failed",
        "5.1.1",
        "gone@example.net",
    )
    assert hard.original_recipient == "Gone@example.net"
    assert hard.remote_mta == "mail.example.net"
    assert hard.diagnostic_code.startswith("550 5.1.1 <gone@example.net>")
    assert hard.is_permanent and not hard.is_temporary
    assert soft.is_temporary and not soft.is_permanent and soft.status == "4.2.2"
    assert report.failed == [hard] and report.is_permanent
    assert report.returned_message["Message-ID"] == "<news-1@lists.example.com>"
    assert "could not" in report.explanation
    # The VERP token of the bounce route.
    assert r.subaddress == "t0k3n"


def test_soft_only():
    report = request(DELAY_ONLY).dsn
    assert not report.is_permanent and report.is_temporary


def test_returned_message_whole():
    report = request(RETURNED_WHOLE).dsn
    [failed] = report.recipients
    assert failed.final_recipient == "nobody@example.org" and failed.is_permanent
    assert report.returned_message["Subject"] == "hello"


def test_not_a_report():
    r = request(b"From: a@b\nSubject: hi\n\nplain\n", sender="a@b")
    assert r.dsn is None and not r.is_bounce
    # A null sender makes a bounce, even one without a report to parse.
    assert request(b"From: MAILER-DAEMON\nSubject: failed\n\nsorry\n").is_bounce


def test_report_with_a_broken_status_part():
    raw = POSTFIX_STYLE.replace(b"Status: 5.1.1", b"Status: five")
    hard = request(raw).dsn.recipients[0]
    assert hard.status == "" and hard.is_permanent  # still "Action: failed"


@pytest.mark.django_db
def test_a_bounce_route_sees_the_report():
    result = Client().send(POSTFIX_STYLE, recipient="inspect@example.com", sender="")
    assert result.request.is_bounce
    assert result.request.dsn.failed[0].final_recipient == "gone@example.net"
