"""
The admin as a support person uses it, in a real browser (headless
Chromium) against the live server, with mail arriving through a real
transport: django-mailpipe, as a process of its own, writing to the
database the live server reads.

One scenario, in order: log in; see the delivered, deferred and bounced
messages in the change list; open a hostile HTML message and find that its
scripts did not run and nothing it points to was fetched (a beacon on the
live server counts every request; the same HTML served without protection
shows that the beacon does count); replay the deferred message once its
view is fixed; send one through the conductor. Screenshots of the pages go
to artifacts/screenshots/.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.db import connection

from mailserver.store.models import InboundMessage, OutboundMessage
from tests.mailapp.models import Ticket

from . import urls
from .browser import ROOT, Browser, missing

pytestmark = pytest.mark.django_db(transaction=True)

# A 1x1 red PNG: the hostile message's inline logo, referred to by cid:.
LOGO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.fixture
def browser():
    reason = missing()
    if reason:
        pytest.skip(f"no browser to test the admin in: {reason}")
    chromium = Browser()
    try:
        yield chromium
    finally:
        chromium.close()


def pipe(settings, message: bytes, recipient: str, sender: str = "ann@example.org"):
    """django-mailpipe, as Postfix runs it, on the live server's database and store."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "tests.admin_settings",
        "PYTHONPATH": str(ROOT),
        "MAILSERVER_TEST_DB": str(connection.settings_dict["NAME"]),
        "MAIL_STORE_ROOT": settings.MAIL_STORE_ROOT,
        "MAILSERVER_TEST_SENT": settings.STORE_TEST_SENT,
    }
    for name in ("MAILSERVER_TEST_DATABASE", "HOME", "LANG"):
        if name in os.environ:
            env[name] = os.environ[name]
    command = [sys.executable, "-m", "mailserver.pipe", "--sender", sender, "--recipient"]
    proc = subprocess.run(
        [*command, recipient], input=message, capture_output=True, env=env, timeout=120
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode()


def plain(subject: str, to: str, body: str, message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = "Ann Example <ann@example.org>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = "Tue, 01 Dec 2026 10:00:00 +0000"
    message["Message-ID"] = message_id
    message.set_content(body)
    return message.as_bytes()


def hostile(base: str) -> bytes:
    """HTML that tries everything a sender's HTML can try: each attempt would hit the beacon."""
    html = f"""<!doctype html>
<html><head><title>hostile</title>
<link rel="stylesheet" href="{base}/beacon/stylesheet">
<style>@import url("{base}/beacon/import");
body {{ font-family: sans-serif; background-image: url("{base}/beacon/background"); }}</style>
<meta http-equiv="refresh" content="0; url={base}/beacon/refresh">
</head><body>
<h1 id="greeting">Your invoice is ready</h1>
<p>Dear customer, please pay at once. <img src="cid:logo@example.org" alt="logo" id="logo"></p>
<img src="{base}/beacon/img" alt="tracking pixel">
<img src="nothing.png" onerror="fetch('{base}/beacon/onerror')">
<script>fetch("{base}/beacon/script");
try {{ parent.document.title = "pwned"; }} catch (e) {{ fetch("{base}/beacon/parent"); }}
</script>
<form action="{base}/beacon/form" method="post" id="f"><input name="card" value="4111"></form>
<script>document.getElementById("f").submit();</script>
<iframe src="{base}/beacon/frame"></iframe>
<object data="{base}/beacon/object"></object>
<video poster="{base}/beacon/poster"></video>
</body></html>
"""
    message = EmailMessage()
    message["From"] = "Billing <billing@example.net>"
    message["To"] = "help@desk.example.com"
    message["Subject"] = "Your invoice"
    message["Date"] = "Tue, 01 Dec 2026 11:00:00 +0000"
    message["Message-ID"] = "<hostile1@example.net>"
    message.set_content("Your invoice is ready. Please pay at once.\n")
    message.add_alternative(html, subtype="html")
    message.get_payload()[1].add_related(
        LOGO, "image", "png", cid="<logo@example.org>", filename="logo.png"
    )
    message.add_attachment(
        b"MZ not really a program\n",
        maintype="application",
        subtype="octet-stream",
        filename="../../invoice\u202egnp.exe",
    )
    return message.as_bytes()


def log_in(browser: Browser, live_server, username: str):
    browser.driver.get(f"{live_server.url}/admin/login/")
    browser.find("#id_username").send_keys(username)
    browser.find("#id_password").send_keys("secret")
    browser.find("input[type=submit]").click()
    browser.wait(lambda d: "/admin/login/" not in d.current_url)


def row_for(browser: Browser, subject: str):
    for row in browser.find_all("#result_list tbody tr"):
        if subject in row.text:
            return row
    raise AssertionError(f"no row for {subject!r} in the change list")


def wait_for_hits(names: set[str], timeout: float = 20) -> set[str]:
    """Until the beacon has counted each of ``names`` (or the time is up): what it counted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not names <= set(urls.HITS):
        time.sleep(0.1)
    return set(urls.HITS)


def test_a_support_person_at_work(browser, live_server, settings, staff):
    urls.HITS.clear()
    base = live_server.url
    # Mail arrives through the pipe, as Postfix delivers it.
    delivered = pipe(
        settings,
        plain("Printer on fire", "help@desk.example.com", "Help!\n", "<p1@example.org>"),
        "help@desk.example.com",
    )
    assert delivered[0] == 0, delivered[1]
    deferred = pipe(
        settings,
        plain("Refund please", "fragile@desk.example.com", "Order 42\n", "<p2@example.org>"),
        "fragile@desk.example.com",
    )
    assert deferred[0] == 75 and deferred[1].startswith("4.3.0"), deferred[1]
    bounced = pipe(
        settings,
        plain("Anyone there?", "nobody@desk.example.com", "Hello?\n", "<p3@example.org>"),
        "nobody@desk.example.com",
    )
    assert bounced[0] == 67 and bounced[1].startswith("5.1.1"), bounced[1]
    assert pipe(settings, hostile(base), "help@desk.example.com")[0] == 0
    assert InboundMessage.objects.count() == 4

    staff(
        "view_inboundmessage",
        "view_outboundmessage",
        "replay_inboundmessage",
        "use_conductor",
    )
    log_in(browser, live_server, "support")

    # The change list: newest first, each with its status and outcome.
    browser.driver.get(f"{base}/admin/mailserver_store/inboundmessage/")
    subjects = [
        row.find_element("css selector", "th").text
        for row in browser.find_all("#result_list tbody tr")
    ]
    assert subjects == ["Your invoice", "Anyone there?", "Refund please", "Printer on fire"]
    assert "processed" in row_for(browser, "Printer on fire").text
    assert "deferred" in row_for(browser, "Refund please").text
    assert "5.1.1" in row_for(browser, "Anyone there?").text
    browser.screenshot("changelist")

    # The hostile message: its HTML shows, and does nothing.
    row_for(browser, "Your invoice").find_element("css selector", "th a").click()
    browser.wait(lambda d: d.find_elements("css selector", "#mailstore-html"))
    frame = browser.find("#mailstore-html")
    assert frame.get_attribute("sandbox") == ""
    browser.driver.switch_to.frame(frame)
    assert browser.find("#greeting").text == "Your invoice is ready"
    # The inline image (cid:) is shown, as a data: URI.
    logo = browser.find("#logo")
    assert logo.get_attribute("src").startswith("data:image/png;base64,")
    assert browser.driver.execute_script("return arguments[0].naturalWidth", logo) == 1
    browser.driver.switch_to.default_content()
    assert "pwned" not in browser.driver.title
    assert [a.text for a in browser.find_all("#mailstore-attachments a")] == [
        "logo.png",
        "invoicegnp.exe",  # the right-to-left override is gone
    ]
    browser.screenshot("message")
    # The page and its frame have loaded (the load event waits for both):
    # every request the HTML could make has been made, or refused.
    assert urls.HITS == []

    # The same HTML served with no protection, in the site's own origin:
    # the beacon counts the script and the remote image. So the zero above
    # is the protection's, not a beacon that does not count.
    message = InboundMessage.objects.get(subject="Your invoice")
    browser.driver.get(f"{base}/control/{message.pk}/")
    assert {"script", "img"} <= wait_for_hits({"script", "img"})

    # The deferred message, replayed after its view was fixed.
    settings.ADMIN_TEST_FIXED = True
    fragile = InboundMessage.objects.get(subject="Refund please")
    browser.driver.get(f"{base}/admin/mailserver_store/inboundmessage/{fragile.pk}/change/")
    assert browser.find("#mailstore-status").text == "deferred"
    assert not browser.find_all("#mailstore-incinerate")  # not this person's to do
    browser.find("#mailstore-replay").click()
    browser.find("#mailstore-confirm").click()
    browser.wait(lambda d: "/change/" in d.current_url)
    assert browser.find("#mailstore-status").text == "processed"
    assert "Replayed: 2.0.0 delivered, route fragile" in browser.find(".messagelist").text
    assert Ticket.objects.filter(subject="Refund please").count() == 1
    attempts = browser.find("#mailstore-attempts").text
    assert "pipe" in attempts and "replay" in attempts
    reply = OutboundMessage.objects.get(inbound=fragile)
    ticket = Ticket.objects.get(subject="Refund please")
    assert (reply.status, reply.subject) == ("sent", f"[#{ticket.pk}] Refund please")
    browser.screenshot("replayed")
    # The reply it produced, on a page of its own.
    browser.find("#mailstore-replies a").click()
    browser.wait(lambda d: "outboundmessage" in d.current_url)
    assert browser.find("#mailstore-status").text == "sent"
    assert "We opened ticket" in browser.find("#mailstore-text").text
    browser.screenshot("reply")

    # The conductor: a message composed in the admin, through the same core.
    browser.driver.get(f"{base}/admin/mailserver_store/inboundmessage/")
    browser.find("#mailstore-conductor").click()
    assert browser.find("#id_from_email").get_attribute("value") == "support@example.com"
    browser.find("#id_from_email").clear()
    browser.find("#id_from_email").send_keys("Bob <bob@example.org>")
    browser.find("#id_to").send_keys("help@desk.example.com")
    browser.find("#id_subject").send_keys("Toner low")
    browser.find("#id_text").send_keys("The toner is low on the third floor.")
    attachment = Path(settings.MAIL_STORE_ROOT).parent / "photo.txt"
    attachment.write_text("a photo of the toner\n")
    browser.find("#id_attachments").send_keys(str(attachment))
    browser.find("#mailstore-send").click()
    browser.wait(lambda d: d.find_elements("css selector", "#mailstore-result-1"))
    result = browser.find("#mailstore-result-1").text
    assert "delivered" in result and "open-ticket" in result
    assert "We opened ticket #" in result
    browser.screenshot("conductor")
    composed = InboundMessage.objects.get(subject="Toner low")
    assert (composed.transport, composed.sender, composed.status) == (
        "conductor",
        "bob@example.org",
        "processed",
    )
