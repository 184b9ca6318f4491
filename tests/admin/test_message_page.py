"""
The message page: what it shows, and how it serves what the sender wrote
(the HTML body, attachments, the raw source) without letting any of it act.
"""

import os

import pytest

from mailserver.store.admin.display import HTML_POLICY, safe_filename
from mailserver.store.models import InboundMessage
from mailserver.test import build_message

from .conftest import deliver

pytestmark = pytest.mark.django_db

BASE = "/admin/mailserver_store/inboundmessage"
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005050200ca5b2c7f0000000049454e44ae426082"
)

HTML = (
    '<h1>Invoice</h1><script>fetch("https://evil.example/x")</script>'
    '<img src="https://evil.example/pixel.gif"><img src="cid:logo@example.org">'
)


def hostile_message():
    from email.message import EmailMessage

    logo = EmailMessage()
    logo.set_content(PIXEL, maintype="image", subtype="png", cid="<logo@example.org>")
    return build_message(
        subject="Invoice <b>now</b>",
        from_email="Billing <billing@example.net>",
        to="help@desk.example.com",
        text="Pay <now>.",
        html=HTML,
        headers={"X-Hostile": "<script>alert(1)</script>", "Message-ID": "<inv1@example.net>"},
        attachments=[
            logo,
            ("../../etc/passwd", b"root:x:0:0\n", "text/plain"),
            ('a"b;\r\nc\u202egnp.html', b"<script>alert(1)</script>", "text/html"),
            ("CON.txt", b"device", "text/plain"),
        ],
    )


@pytest.fixture
def hostile():
    deliver(hostile_message())
    return InboundMessage.objects.get()


def test_the_page_shows_the_envelope_bodies_headers_attachments_attempts_and_replies(
    admin_client, hostile
):
    response = admin_client.get(f"{BASE}/{hostile.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;ann@example.org&gt;" in page and "&lt;help@desk.example.com&gt;" in page
    assert "Invoice &lt;b&gt;now&lt;/b&gt;" in page
    assert "Pay &lt;now&gt;." in page
    assert "X-Hostile" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)</script>" not in page
    # The HTML body is not in the page: only a sandboxed frame pointing to it.
    assert "evil.example" not in page
    assert f'src="{BASE}/{hostile.pk}/html/" sandbox ' in page
    for name in ("passwd", "_CON.txt", "a_b;cgnp.html"):
        assert name in page
    assert "route <strong" in page and "open-ticket" in page
    assert page.count('id="mailstore-attempts"') == 1
    # Its one run, told by its row (a first run that succeeds writes no attempt).
    attempts = page.split('id="mailstore-attempts"')[1].split("</table>")[0]
    assert attempts.count("<tr") == 1 + 1 and hostile.outcome in attempts
    assert "[#1] Invoice" in page  # the reply the view wrote


def test_the_html_body_is_served_with_a_policy_that_lets_nothing_run_or_load(admin_client, hostile):
    response = admin_client.get(f"{BASE}/{hostile.pk}/html/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["Content-Security-Policy"] == HTML_POLICY
    policy = dict((d.split(" ", 1) + [""])[:2] for d in HTML_POLICY.replace("; ", ";").split(";"))
    assert policy["default-src"] == "'none'"
    assert "script-src" not in policy and "'unsafe-inline'" not in policy["default-src"]
    assert policy["img-src"] == "data: cid:" and policy["form-action"] == "'none'"
    assert "sandbox" in policy and policy["sandbox"] == ""
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    assert response["Referrer-Policy"] == "no-referrer"
    body = response.content.decode()
    # The inline image is embedded; the rest is as the sender wrote it,
    # for the browser to refuse under the policy.
    assert "cid:logo@example.org" not in body and "data:image/png;base64," in body
    assert '<img src="https://evil.example/pixel.gif">' in body


def test_attachments_download_under_safe_names_never_shown(admin_client, hostile):
    downloads = {}
    for index in (1, 2, 3, 4):
        response = admin_client.get(f"{BASE}/{hostile.pk}/attachments/{index}/")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"].startswith("attachment;")
        assert "\r" not in response["Content-Disposition"]
        downloads[index] = (response["Content-Disposition"], response.content)
    assert downloads[2] == ('attachment; filename="passwd"', b"root:x:0:0\n")
    disposition, content = downloads[3]
    assert content == b"<script>alert(1)</script>"
    assert disposition == 'attachment; filename="a_b;cgnp.html"'
    assert downloads[4][0] == 'attachment; filename="_CON.txt"'
    assert admin_client.get(f"{BASE}/{hostile.pk}/attachments/5/").status_code == 404
    assert admin_client.get(f"{BASE}/{hostile.pk}/attachments/0/").status_code == 404


def test_the_raw_source_downloads_as_it_was_stored(admin_client, hostile):
    response = admin_client.get(f"{BASE}/{hostile.pk}/raw/")
    assert response.status_code == 200
    assert response.content == hostile_message_bytes(hostile)
    assert response["Content-Disposition"] == f'attachment; filename="message-{hostile.pk}.eml"'
    assert response["X-Content-Type-Options"] == "nosniff"


def hostile_message_bytes(inbound):
    with inbound.open_raw() as file:
        return file.read()


def test_a_message_without_html_has_no_frame_and_its_html_url_is_404(admin_client):
    deliver()
    inbound = InboundMessage.objects.get()
    page = admin_client.get(f"{BASE}/{inbound.pk}/change/").content.decode()
    assert "<iframe" not in page and "Help!" in page
    assert admin_client.get(f"{BASE}/{inbound.pk}/html/").status_code == 404


def test_a_message_whose_file_is_gone_still_has_its_page(admin_client, store, settings):
    settings.MAIL_STORE_ROW_LIMIT = 0  # to a file, however small
    deliver()
    inbound = InboundMessage.objects.get()
    os.unlink(store / inbound.raw_name)
    response = admin_client.get(f"{BASE}/{inbound.pk}/change/")
    assert response.status_code == 200
    assert "gone from the storage" in response.content.decode()
    assert admin_client.get(f"{BASE}/{inbound.pk}/raw/").status_code == 404


def test_the_pages_need_the_view_permission(client, staff):
    deliver(hostile_message())
    inbound = InboundMessage.objects.get()
    urls = [f"{BASE}/{inbound.pk}/{what}/" for what in ("change", "html", "raw", "attachments/1")]
    for url in urls:
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(staff())
    for url in urls:
        assert client.get(url).status_code == 403, url
    client.force_login(staff("view_inboundmessage", username="viewer"))
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "name, expected",
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system.ini", "system.ini"),
        ("..", "part-1"),
        (".bashrc", "bashrc"),
        ("", "part-1"),
        ("a\u202egnp.exe", "agnp.exe"),
        ('quote"d<>|?*.txt', "quote_d_____.txt"),
        ("nul.txt", "_nul.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("x" * 300 + ".docx", "x" * 115 + ".docx"),
        ("Caf\u0065\u0301.txt", "Caf\u00e9.txt"),
    ],
)
def test_safe_filename(name, expected):
    assert safe_filename(name, "part-1") == expected
