"""
Which library finds the new text of a reply best: the figures behind the
choice in mailserver/replies.py.

    python benchmarks/reply_text.py             # every library installed here
    python benchmarks/reply_text.py --show      # and each miss, side by side

Runs each library on every reply of tests/trust/replies.py (Gmail, Outlook,
Apple Mail, Thunderbird; several languages; with and without signatures),
once on its plain text part and once on its HTML part where it has one, and
counts the replies whose new text it returned exactly (blanks collapsed).
A library with an HTML reader of its own uses it; the others read the text
of the HTML as mailserver.replies.html_to_text makes it. A library that is
not installed is listed as such (talon needs an old scikit-learn: run this
script with the interpreter of a virtualenv that has it, with the checkout
on PYTHONPATH).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailserver.replies import LANGUAGES, html_to_text  # noqa: E402
from tests.trust.replies import CASES  # noqa: E402


def _normal(text: str | None) -> str:
    return " ".join((text or "").split())


def mail_parser_reply():
    from mailparser_reply import EmailReplyParser

    parser = EmailReplyParser(languages=LANGUAGES)

    def plain(text):
        message = parser.read(text)
        return message.replies[0].body if message.replies else text

    return plain, None


def quotequail():
    import quotequail

    def plain(text):
        unwrapped = quotequail.unwrap(text)
        if unwrapped and "text_top" in unwrapped:
            return unwrapped["text_top"]
        return "".join(part for shown, part in quotequail.quote(text) if shown)

    def html(markup):
        unwrapped = quotequail.unwrap_html(markup)
        if unwrapped and "html_top" in unwrapped:
            return html_to_text(unwrapped["html_top"])
        shown = "".join(part for keep, part in quotequail.quote_html(markup) if keep)
        return html_to_text(shown)

    return plain, html


def quotequail_and_mail_parser_reply():
    """quotequail finds the quote, mail-parser-reply the signature above it."""
    from mailparser_reply import EmailReplyParser

    parser = EmailReplyParser(languages=LANGUAGES)
    quote_plain, quote_html = quotequail()

    def unsign(text):
        message = parser.read(text)
        return message.replies[0].body if message.replies else text

    return (lambda text: unsign(quote_plain(text))), (lambda markup: unsign(quote_html(markup)))


def talon():
    from talon import quotations
    from talon.signature.bruteforce import extract_signature

    def plain(text):
        return extract_signature(quotations.extract_from_plain(text))[0]

    def html(markup):
        return extract_signature(html_to_text(quotations.extract_from_html(markup)))[0]

    return plain, html


def email_reply_parser():
    from email_reply_parser import EmailReplyParser

    return EmailReplyParser.parse_reply, None


LIBRARIES = {
    "mail-parser-reply": mail_parser_reply,
    "quotequail": quotequail,
    "quotequail+mail-parser-reply": quotequail_and_mail_parser_reply,
    "talon": talon,
    "email-reply-parser": email_reply_parser,
}


def run(name, factory, show):
    try:
        plain, html = factory()
    except ImportError as exc:
        print(f"{name:28} not installed ({exc.name})")
        return
    html = html or (lambda markup: plain(html_to_text(markup)))
    scores = {"text": [0, 0], "html": [0, 0]}
    clients: dict[str, list[int]] = {}
    for case in CASES[:1]:  # imports and caches out of the timing
        plain(case.text)
        if case.html:
            html(case.html)
    started = time.perf_counter()
    for case in CASES:
        for kind, body, read in (("text", case.text, plain), ("html", case.html, html)):
            if body is None:
                continue
            try:
                got = read(body)
            except Exception as exc:  # a library that crashes scores nothing
                got = f"<{type(exc).__name__}: {exc}>"
            ok = _normal(got) == _normal(case.new_text)
            scores[kind][0] += ok
            scores[kind][1] += 1
            per_client = clients.setdefault(case.client, [0, 0])
            per_client[0] += ok
            per_client[1] += 1
            if show and not ok:
                print(f"  {name} {case.name} ({kind}): {_normal(got)[:90]!r}")
    elapsed = time.perf_counter() - started
    runs = scores["text"][1] + scores["html"][1]
    total = scores["text"][0] + scores["html"][0]
    by_client = ", ".join(f"{c} {a}/{b}" for c, (a, b) in clients.items())
    print(
        f"{name:28} {total:2}/{runs} exact  (text {scores['text'][0]}/{scores['text'][1]}, "
        f"html {scores['html'][0]}/{scores['html'][1]}; {by_client}) "
        f"{elapsed / runs * 1000:.2f} ms a reply"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="print each miss")
    parser.add_argument("libraries", nargs="*", default=list(LIBRARIES))
    options = parser.parse_args()
    print(f"{len(CASES)} replies, {sum(c.html is not None for c in CASES)} with HTML")
    for name in options.libraries:
        run(name, LIBRARIES[name], options.show)


if __name__ == "__main__":
    main()
