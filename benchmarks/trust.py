"""
What trust costs per message: checking a signed reply address, and reading
request.authentication from a message with a typical set of headers.

    python benchmarks/trust.py            # 20,000 rounds of each
    python benchmarks/trust.py --rounds 2000

Runs in-process with the test settings (tests/settings.py); prints the
median of 7 timings of ``rounds`` calls each, per call. Both should be far
below a millisecond: they run for every message (the token also at RCPT
time in runmailserver).

- token: ``mailserver.signing.check_token`` + ``check_binding`` on a token
  with every option (expiry, bound to a sender), as the handler runs them;
  with one fallback key, and the cost of a token made with that old key
  (two HMACs instead of one).
- resolve: ``resolve()`` of a signed address: the route lookup plus the
  token check, what runmailserver does at RCPT time.
- authentication: a new EmailRequest, then ``request.authentication`` and
  ``request.sender_verified`` on a message with the MTA's Received header,
  two Authentication-Results of ours (OpenDKIM's and OpenDMARC's) and a
  forged one below the hop; parsing the message is not counted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

MESSAGE = b"""\
Received: from mail.example.org (mail.example.org [192.0.2.1])
\tby mx.bugs.example.com (Postfix) with ESMTPS id 4XyZ12abc
\tfor <ticket-42@bugs.example.com>; Tue, 1 Dec 2026 10:00:00 +0000 (UTC)
Authentication-Results: mx.bugs.example.com; dmarc=pass (p=reject dis=none)
\theader.from=example.org
Authentication-Results: mx.bugs.example.com;
\tdkim=pass (2048-bit key; unprotected) header.d=example.org header.i=@example.org
\theader.s=s1 header.b=AbCdEfGh
Received: from [198.51.100.7] by mail.example.org with ESMTPSA id abc;
\tTue, 1 Dec 2026 09:59:59 +0000
Authentication-Results: mx.bugs.example.com; dmarc=pass header.from=example.org
DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=s1; h=from:to:subject; bh=x; b=y
From: Ann <ann@example.org>
To: ticket-42@bugs.example.com
Subject: Re: [#42] Printer on fire
Message-ID: <1@example.org>

Thanks, it is out now.
"""


def per_call(func, rounds: int) -> float:
    timings = []
    for _ in range(7):
        started = time.perf_counter()
        for _ in range(rounds):
            func()
        timings.append((time.perf_counter() - started) / rounds)
    return statistics.median(timings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    rounds = parser.parse_args().rounds

    import django
    from django.conf import settings
    from django.test.utils import override_settings

    django.setup()
    from mailserver.addresses import parse
    from mailserver.envelope import Envelope
    from mailserver.mime import parse_message
    from mailserver.request import EmailRequest
    from mailserver.resolvers import resolve, reverse
    from mailserver.signing import check_binding, check_token, make_token

    base = "ticket-42@bugs.example.com"
    sender = ["ann@example.org"]
    token = make_token(base, bind=sender[0], expires=3600)

    def verify_token():
        check_binding(check_token(base, token), sender)

    results = {}
    with override_settings(SECRET_KEY_FALLBACKS=["an-old-key"]):
        results["token (current key)"] = per_call(verify_token, rounds)
    old_key = settings.SECRET_KEY
    with override_settings(SECRET_KEY="a-new-key", SECRET_KEY_FALLBACKS=[old_key]):
        results["token (made with the fallback key)"] = per_call(verify_token, rounds)

    with override_settings(ROOT_MAILCONF="tests.trust.mailconf"):
        address = parse(reverse("reply", kwargs={"ticket": 42}, sign=True, expires=3600))
        results["resolve() of a signed address"] = per_call(lambda: resolve(address), rounds)

    message = parse_message(MESSAGE)
    envelope = Envelope(sender=sender[0], recipient=str(address))

    def authentication():
        request = EmailRequest(MESSAGE, envelope, message)
        assert request.sender_verified, request.sender_verified_reason

    with override_settings(MAIL_AUTHSERV_IDS=["mx.bugs.example.com"]):
        results["request.authentication"] = per_call(authentication, max(1, rounds // 4))

    for name, seconds in results.items():
        print(f"{name:38} {seconds * 1e6:8.1f} µs")


if __name__ == "__main__":
    main()
