"""
Replies as the common mail clients write them, in several languages, each
with the new text a person typed above the quote. Written for this project
after the way each client lays out its replies (attribution lines, quote
markers, the HTML it wraps a quote in, signatures), in plain text and HTML.

Used by tests/trust/test_replies.py and by benchmarks/reply_text.py, which
compares the reply-parsing libraries on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    name: str
    client: str
    language: str
    new_text: str
    text: str | None = None
    html: str | None = None


QUOTED = (
    "> We opened ticket #42 for you: the printer on floor 3 is on fire.\n"
    "> Reply to this message to add a comment.\n"
    ">\n"
    "> -- \n"
    "> Help Desk\n"
)
QUOTED_HTML = (
    "We opened ticket #42 for you: the printer on floor 3 is on fire.<br>"
    "Reply to this message to add a comment.<br><br>-- <br>Help Desk"
)
QUOTED_BARE = (
    "We opened ticket #42 for you: the printer on floor 3 is on fire.\n"
    "Reply to this message to add a comment.\n"
)

CASES = [
    # Gmail ------------------------------------------------------------------
    Reply(
        "gmail-en",
        "Gmail",
        "en",
        "Thanks, it is out now.\n\nAnn",
        text=(
            "Thanks, it is out now.\n\nAnn\n\n"
            "On Tue, Dec 1, 2026 at 10:00 AM Help Desk <help@bugs.example.com> wrote:\n\n" + QUOTED
        ),
        html=(
            '<div dir="ltr">Thanks, it is out now.<div><br></div><div>Ann</div></div><br>'
            '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Dec 1, 2026 at '
            '10:00 AM Help Desk &lt;<a href="mailto:help@bugs.example.com">help@bugs.example.com'
            '</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px '
            '0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">'
            + QUOTED_HTML
            + "</blockquote></div>"
        ),
    ),
    Reply(
        "gmail-en-wrapped-attribution",
        "Gmail",
        "en",
        "Still smoking a little.",
        text=(
            "Still smoking a little.\n\n"
            "On Tue, Dec 1, 2026 at 10:00 AM Help Desk of the Building Services Team <\n"
            "help@bugs.example.com> wrote:\n\n" + QUOTED
        ),
    ),
    Reply(
        "gmail-de",
        "Gmail",
        "de",
        "Danke, das Feuer ist aus.",
        text=(
            "Danke, das Feuer ist aus.\n\n"
            "Am Di., 1. Dez. 2026 um 10:00 Uhr schrieb Help Desk <help@bugs.example.com>:\n\n"
            + QUOTED
        ),
        html=(
            '<div dir="ltr">Danke, das Feuer ist aus.</div><br><div class="gmail_quote">'
            '<div dir="ltr" class="gmail_attr">Am Di., 1. Dez. 2026 um 10:00&nbsp;Uhr schrieb '
            "Help Desk &lt;help@bugs.example.com&gt;:<br></div>"
            '<blockquote class="gmail_quote">' + QUOTED_HTML + "</blockquote></div>"
        ),
    ),
    Reply(
        "gmail-fr",
        "Gmail",
        "fr",
        "Merci, tout va bien maintenant.",
        text=(
            "Merci, tout va bien maintenant.\n\n"
            "Le mar. 1 déc. 2026 à 10:00, Help Desk <help@bugs.example.com> a écrit :\n\n" + QUOTED
        ),
    ),
    Reply(
        "gmail-es",
        "Gmail",
        "es",
        "Gracias, ya está apagado.",
        text=(
            "Gracias, ya está apagado.\n\n"
            "El mar, 1 dic 2026 a las 10:00, Help Desk (<help@bugs.example.com>) escribió:\n\n"
            + QUOTED
        ),
    ),
    Reply(
        "gmail-it",
        "Gmail",
        "it",
        "Grazie, risolto.",
        text=(
            "Grazie, risolto.\n\n"
            "Il giorno mar 1 dic 2026 alle ore 10:00 Help Desk <help@bugs.example.com> ha "
            "scritto:\n\n" + QUOTED
        ),
    ),
    Reply(
        "gmail-nl",
        "Gmail",
        "nl",
        "Bedankt, het is opgelost.",
        text=(
            "Bedankt, het is opgelost.\n\n"
            "Op di 1 dec 2026 om 10:00 schreef Help Desk <help@bugs.example.com>:\n\n" + QUOTED
        ),
    ),
    Reply(
        "gmail-signature",
        "Gmail",
        "en",
        "Fixed, thank you.",
        text=(
            "Fixed, thank you.\n\n-- \nAnn Lee\nFacilities, ACME Corp.\n+1 555 0100\n\n"
            "On Tue, Dec 1, 2026 at 10:00 AM Help Desk <help@bugs.example.com> wrote:\n\n" + QUOTED
        ),
    ),
    # Outlook ----------------------------------------------------------------
    Reply(
        "outlook-web-en",
        "Outlook",
        "en",
        "Sounds good, I will check tomorrow.",
        text=(
            "Sounds good, I will check tomorrow.\n\n"
            "________________________________\n"
            "From: Help Desk <help@bugs.example.com>\n"
            "Sent: Tuesday, December 1, 2026 10:00 AM\n"
            "To: Ann Lee <ann@example.org>\n"
            "Subject: [#42] Printer on fire\n\n" + QUOTED_BARE
        ),
        html=(
            '<html><body><div style="font-family: Calibri, Arial;">Sounds good, I will check '
            "tomorrow.</div>"
            '<hr style="display:inline-block;width:98%" tabindex="-1">'
            '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" '
            'style="font-size:11pt" color="#000000"><b>From:</b> Help Desk '
            "&lt;help@bugs.example.com&gt;<br><b>Sent:</b> Tuesday, December 1, 2026 10:00 AM<br>"
            "<b>To:</b> Ann Lee &lt;ann@example.org&gt;<br><b>Subject:</b> [#42] Printer on fire"
            "</font><div>&nbsp;</div></div><div>" + QUOTED_HTML + "</div></body></html>"
        ),
    ),
    Reply(
        "outlook-desktop-en",
        "Outlook",
        "en",
        "Please close the ticket.\n\nRegards,\nAnn",
        text=(
            "Please close the ticket.\n\nRegards,\nAnn\n\n"
            "-----Original Message-----\n"
            "From: Help Desk <help@bugs.example.com>\n"
            "Sent: Tuesday, December 1, 2026 10:00 AM\n"
            "To: Ann Lee <ann@example.org>\n"
            "Subject: [#42] Printer on fire\n\n" + QUOTED_BARE
        ),
    ),
    Reply(
        "outlook-desktop-de",
        "Outlook",
        "de",
        "Bitte schließen Sie das Ticket.",
        text=(
            "Bitte schließen Sie das Ticket.\n\n"
            "-----Ursprüngliche Nachricht-----\n"
            "Von: Help Desk <help@bugs.example.com>\n"
            "Gesendet: Dienstag, 1. Dezember 2026 10:00\n"
            "An: Ann Lee <ann@example.org>\n"
            "Betreff: [#42] Printer on fire\n\n" + QUOTED_BARE
        ),
    ),
    Reply(
        "outlook-fr",
        "Outlook",
        "fr",
        "Vous pouvez fermer le ticket.",
        text=(
            "Vous pouvez fermer le ticket.\n\n"
            "________________________________\n"
            "De : Help Desk <help@bugs.example.com>\n"
            "Envoyé : mardi 1 décembre 2026 10:00\n"
            "À : Ann Lee <ann@example.org>\n"
            "Objet : [#42] Printer on fire\n\n" + QUOTED_BARE
        ),
    ),
    Reply(
        "outlook-es",
        "Outlook",
        "es",
        "Pueden cerrar el ticket.",
        text=(
            "Pueden cerrar el ticket.\n\n"
            "________________________________\n"
            "De: Help Desk <help@bugs.example.com>\n"
            "Enviado: martes, 1 de diciembre de 2026 10:00\n"
            "Para: Ann Lee <ann@example.org>\n"
            "Asunto: [#42] Printer on fire\n\n" + QUOTED_BARE
        ),
    ),
    # Apple Mail -------------------------------------------------------------
    Reply(
        "apple-en",
        "Apple Mail",
        "en",
        "Will do.",
        text=(
            "Will do.\n\n"
            "> On 1 Dec 2026, at 10:00, Help Desk <help@bugs.example.com> wrote:\n"
            "> \n" + QUOTED
        ),
        html=(
            '<html><body style="overflow-wrap: break-word;"><div>Will do.</div><div><br>'
            '<blockquote type="cite"><div>On 1 Dec 2026, at 10:00, Help Desk &lt;'
            "help@bugs.example.com&gt; wrote:</div><br><div><div>"
            + QUOTED_HTML
            + "</div></div></blockquote></div><br></body></html>"
        ),
    ),
    Reply(
        "apple-iphone-en",
        "Apple Mail",
        "en",
        "On my way.",
        text=(
            "On my way.\n\nSent from my iPhone\n\n"
            "> On Dec 1, 2026, at 10:00 AM, Help Desk <help@bugs.example.com> wrote:\n"
            "> \n" + QUOTED
        ),
    ),
    Reply(
        "apple-de",
        "Apple Mail",
        "de",
        "Mache ich.",
        text=(
            "Mache ich.\n\n"
            "> Am 01.12.2026 um 10:00 schrieb Help Desk <help@bugs.example.com>:\n"
            "> \n" + QUOTED
        ),
    ),
    # Thunderbird ------------------------------------------------------------
    Reply(
        "thunderbird-en",
        "Thunderbird",
        "en",
        "Thanks for the quick help.",
        text=("Thanks for the quick help.\n\nOn 01/12/2026 10:00, Help Desk wrote:\n" + QUOTED),
        html=(
            "<html><body><p>Thanks for the quick help.</p>"
            '<div class="moz-cite-prefix">On 01/12/2026 10:00, Help Desk wrote:<br></div>'
            '<blockquote type="cite" cite="mid:42@bugs.example.com">'
            + QUOTED_HTML
            + "</blockquote></body></html>"
        ),
    ),
    Reply(
        "thunderbird-nl",
        "Thunderbird",
        "nl",
        "Dank voor de snelle hulp.",
        text=("Dank voor de snelle hulp.\n\nOp 01-12-2026 om 10:00 schreef Help Desk:\n" + QUOTED),
    ),
    Reply(
        "thunderbird-fr",
        "Thunderbird",
        "fr",
        "Merci pour l'aide.",
        text=("Merci pour l'aide.\n\nLe 01/12/2026 à 10:00, Help Desk a écrit :\n" + QUOTED),
    ),
    Reply(
        "thunderbird-signature",
        "Thunderbird",
        "en",
        "Resolved.",
        text=(
            "Resolved.\n\n-- \nAnn Lee\nACME Corp.\n\n"
            "On 01/12/2026 10:00, Help Desk wrote:\n" + QUOTED
        ),
    ),
    # No quote at all ----------------------------------------------------------
    Reply(
        "no-quote",
        "any",
        "en",
        "The printer is fine again.\nNo need to come.",
        text="The printer is fine again.\nNo need to come.\n",
    ),
]
