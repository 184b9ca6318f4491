"""request.reply_text on replies as the common clients write them (tests/trust/replies.py)."""

from __future__ import annotations

import pytest

from mailserver.replies import html_to_text, reply_text
from mailserver.test import RequestFactory, build_message

from .replies import CASES

# The one reply of the corpus the chosen libraries get wrong: they take the
# closing "Regards, Ann" for a signature. Kept strict, so that a fix shows.
KNOWN_MISSES = {("outlook-desktop-en", "text")}


def normal(text: str) -> str:
    return " ".join(text.split())


def cases():
    for case in CASES:
        for kind in ("text", "html"):
            if getattr(case, kind) is not None:
                marks = (
                    [pytest.mark.xfail(strict=True, reason="a sign-off read as a signature")]
                    if (case.name, kind) in KNOWN_MISSES
                    else []
                )
                yield pytest.param(case, kind, id=f"{case.name}-{kind}", marks=marks)


@pytest.mark.parametrize("case, kind", list(cases()))
def test_the_new_text_of_each_reply(case, kind):
    """Through a real message and request: the HTML case is an HTML-only message."""
    parts = {"text": case.text} if kind == "text" else {"html": case.html}
    raw = build_message(subject="Re: [#42] Printer on fire", from_email="ann@example.org", **parts)
    request = RequestFactory().message(raw, recipient="open@bugs.example.com")
    assert normal(request.reply_text) == normal(case.new_text)


def test_a_multipart_reply_is_read_from_its_plain_part():
    case = next(c for c in CASES if c.name == "gmail-de")
    raw = build_message(text=case.text, html=case.html.replace("Danke", "HTML"))
    request = RequestFactory().message(raw, recipient="open@bugs.example.com")
    assert request.reply_text == case.new_text


def test_empty_bodies():
    assert reply_text(None, None) == "" and reply_text("  \n", None) == ""


def test_html_to_text_marks_quotes_and_skips_styles():
    html = (
        "<style>p {color: red}</style><p>New &amp; <b>bold</b></p>"
        "<blockquote><div>old</div><div>older</div></blockquote>"
    )
    assert html_to_text(html) == "New & bold\n> old\n> older\n"


def test_a_huge_body_is_read_from_its_top_only():
    from mailserver.replies import QUOTE_SCAN

    new = "First line.\n" + "word " * 10 + "\n"
    body = new + "\nOn Tue, Dec 1, 2026 at 10:00 AM Help Desk <help@x.org> wrote:\n"
    body += "> old\n" * 500_000
    assert normal(reply_text(body)) == normal(new)
    assert len(reply_text("x" * (QUOTE_SCAN * 10))) == QUOTE_SCAN
