"""
The new text of a reply: what the sender typed above the quoted message
and their signature, as ``request.reply_text``.

Two maintained libraries (the ``trust`` extra) do the reading, each for
what it does best on the corpus of tests/trust/replies.py (Gmail, Outlook,
Apple Mail and Thunderbird replies in six languages, plain and HTML;
``python benchmarks/reply_text.py`` prints the figures):

- ``quotequail`` finds where the quoted message starts, in plain text and
  in HTML (Gmail's ``gmail_quote``, Outlook's header block, Apple Mail's and
  Thunderbird's ``blockquote type="cite"``), whatever the language;
- ``mail-parser-reply`` then takes the signature off what is above it
  ("-- ", "Sent from my iPhone", sign-offs), and knows attribution lines
  quotequail misses (Italian Gmail's "Il giorno ... ha scritto:").

Together they got 25 of 26 replies exactly; quotequail alone 22 (it keeps
signatures), mail-parser-reply alone 21, talon 22 (unmaintained since 2017,
and it needs scikit-learn), email-reply-parser 18.

The plain text part is read when there is one (every common client sends
one beside the HTML); an HTML-only message is read as HTML by quotequail,
and the part above the quote turned into text here.
"""

from __future__ import annotations

import functools
import logging
from html.parser import HTMLParser

logger = logging.getLogger("mailserver.replies")

# How much of a body is searched for the quote (the new text is at its
# top), and how much of the new text for a signature (at its end): the
# libraries' time grows with what they read, and a message may be 25 MB.
QUOTE_SCAN = 16_000
SIGNATURE_SCAN = 2_000

# Languages whose attribution lines are recognised; mail-parser-reply's codes.
LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs", "ja", "ko", "zh"]

_BLOCKS = {
    "p", "div", "br", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "pre", "blockquote", "section", "article", "header", "footer",
}  # fmt: skip
_SKIPPED = {"style", "script", "head", "title"}
# Elements whose content is the quoted message, in the common clients' HTML.
_QUOTE_CLASSES = {"gmail_quote", "moz-cite-prefix", "yahoo_quoted"}
_QUOTE_IDS = {"divrplyfwdmsg", "appendonsend"}


class _TextExtractor(HTMLParser):
    """HTML to text, with a ``>`` before each line of a quote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.stack: list[tuple[str, bool]] = []
        self.skipping = 0
        self.quoting = 0

    def _break(self, blank: bool = False) -> None:
        """End the line; an empty one is kept only for a <br> (``blank``)."""
        text = " ".join("".join(self.line).split())
        self.line = []
        if not text and not blank:
            return
        # An empty line inside a quote is left unmarked: a lone ">" right
        # under the new text would read as part of it.
        self.lines.append("> " + text if self.quoting and text else text)

    def handle_starttag(self, tag, attrs):
        if tag in _SKIPPED:
            self.skipping += 1
            return
        values = dict(attrs)
        classes = set((values.get("class") or "").split())
        quote = (
            tag == "blockquote"
            or bool(classes & _QUOTE_CLASSES)
            or (values.get("id") or "").lower() in _QUOTE_IDS
        )
        if tag in _BLOCKS:
            self._break(blank=tag == "br")
        if tag == "hr" and not self.quoting:
            # Outlook separates its quoted header block with a rule.
            self.lines.append("________________________________")
        if tag not in ("br", "hr", "img", "meta", "link", "input"):
            self.stack.append((tag, quote))
            self.quoting += quote

    def handle_endtag(self, tag):
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
            return
        if tag in _BLOCKS:
            self._break()
        while self.stack:
            name, quote = self.stack.pop()
            self.quoting -= quote
            if name == tag:
                break

    def handle_data(self, data):
        if not self.skipping:
            self.line.append(data)

    def text(self) -> str:
        self._break()
        lines: list[str] = []
        for line in self.lines:
            if line or (lines and lines[-1]):
                lines.append(line)
        return "\n".join(lines).strip("\n") + "\n"


def html_to_text(html: str) -> str:
    """The text of an HTML body, its quoted parts prefixed with ``>``."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()


@functools.cache
def _signature_parser():
    from mailparser_reply import EmailReplyParser

    return EmailReplyParser(languages=LANGUAGES)


def _above_quote(text: str) -> str:
    import quotequail

    unwrapped = quotequail.unwrap(text)
    if unwrapped and "text_top" in unwrapped:
        return unwrapped["text_top"]
    return "".join(part for shown, part in quotequail.quote(text) if shown)


def _above_quote_html(html: str) -> str:
    import quotequail

    unwrapped = quotequail.unwrap_html(html)
    if unwrapped and "html_top" in unwrapped:
        return html_to_text(unwrapped["html_top"])
    return html_to_text("".join(part for shown, part in quotequail.quote_html(html) if shown))


def _without_signature(text: str) -> str:
    """
    The text without the signature at its end. mail-parser-reply's time grows
    fast with the length of what it reads (seconds for 100 KB), and a
    signature is in the last lines: it reads only the last SIGNATURE_SCAN
    characters, from a line's start.
    """
    head, tail = "", text
    if len(text) > SIGNATURE_SCAN:
        cut = text.find("\n", len(text) - SIGNATURE_SCAN)
        if cut > 0:
            head, tail = text[: cut + 1], text[cut + 1 :]
    message = _signature_parser().read(tail)
    return head + (message.replies[0].body if message.replies else tail)


def reply_text(text: str | None, html: str | None = None) -> str:
    """
    The new text of a reply, from its plain text part, else its HTML part.
    Mail is the sender's to shape: should a library fail on it, the whole
    text is returned (and the failure logged), never an exception.
    """
    is_html = not (text and text.strip())
    if not is_html:
        body = (text or "")[:QUOTE_SCAN].replace("\r\n", "\n")
    elif html and html.strip():
        body = html[: QUOTE_SCAN * 2]
    else:
        return ""
    try:
        top = _above_quote_html(body) if is_html else _above_quote(body)
        return _without_signature(top).strip()
    except ImportError:
        raise  # the trust extra is missing: say so, do not guess
    except Exception:
        logger.warning("Could not find the new text of a reply", exc_info=True)
        return (html_to_text(body) if is_html else body).strip()
