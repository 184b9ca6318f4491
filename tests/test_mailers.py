"""
Where our mail leaves: replies and failure notices through the mailer
MAIL_REPLY_MAILER names on Django 6.1+, through EMAIL_BACKEND before; word
to ADMINS through Django's default mailer; and no deprecation warning from
our code on any Django (pyproject's filterwarnings make one an error).
"""

import logging
import warnings

import pytest
from django.core import mail

from mailserver import Outcome
from mailserver.checks import check_reply_mailer
from mailserver.test import Client
from tests.mail import HAS_MAILERS, LOCMEM, RecordingBackend, use_backend

pytestmark = pytest.mark.django_db

MESSAGE = b"From: Ann <ann@example.org>\nSubject: Printer\n\nIt is on fire.\n"
RECORDING = "tests.mail.RecordingBackend"


@pytest.fixture(autouse=True)
def recording():
    RecordingBackend.sent = []
    return RecordingBackend.sent


def send(recipient, **options):
    return Client(**options).send(MESSAGE, recipient=recipient, sender="ann@example.org")


# Each Django runs the tests of its own way: none are skipped (CI forbids skips).
if HAS_MAILERS:

    @pytest.fixture
    def two_mailers(settings):
        settings.MAILERS = {"default": {"BACKEND": LOCMEM}, "replies": {"BACKEND": RECORDING}}
        settings.MAIL_REPLY_MAILER = "replies"

    def test_a_reply_goes_through_the_mailer_mail_reply_mailer_names(two_mailers, recording):
        result = send("onedest@bugs.example.com")
        assert result.reply_sent
        [reply] = recording
        assert reply.subject == "Re: Printer"
        assert mail.outbox == []

    def test_a_failure_notice_goes_through_it_too(two_mailers, settings, recording):
        settings.MAIL_FAILURE_NOTICES = True
        result = send("nobody@example.com")
        assert result.outcome is Outcome.UNKNOWN_RECIPIENT and result.notice_sent
        [notice] = recording
        assert notice.to == ["ann@example.org"]
        assert mail.outbox == []

    def test_word_to_admins_goes_through_the_default_mailer(two_mailers, recording):
        result = send("broken@example.com", raise_request_exception=False)
        assert result.outcome is Outcome.TEMPORARY_FAILURE
        [report] = mail.outbox
        assert report.to == ["admin@example.com"]
        assert "RuntimeError" in report.subject
        assert recording == []

    def test_a_reply_mailer_missing_from_mailers_is_an_error(settings):
        settings.MAILERS = {"default": {"BACKEND": LOCMEM}}
        assert check_reply_mailer() == []
        settings.MAIL_REPLY_MAILER = "replies"
        [error] = check_reply_mailer()
        assert error.id == "mailserver.E005"
        assert "'replies'" in error.msg

else:

    def test_before_django_6_1_replies_go_through_email_backend(settings, recording):
        use_backend(settings, RECORDING)
        settings.MAIL_REPLY_MAILER = "replies"
        assert send("onedest@bugs.example.com").reply_sent
        assert [reply.subject for reply in recording] == ["Re: Printer"]
        [warning] = check_reply_mailer()
        assert warning.id == "mailserver.W003"
        settings.MAIL_REPLY_MAILER = "default"
        assert check_reply_mailer() == []


def test_a_mailer_that_cannot_tell_admins_is_logged_and_the_message_deferred(settings, caplog):
    use_backend(settings, "tests.mail.BrokenBackend")  # its server is down
    with caplog.at_level(logging.ERROR, logger="mailserver.request"):
        result = send("broken@example.com", raise_request_exception=False)
    assert result.outcome is Outcome.TEMPORARY_FAILURE
    assert "Could not mail the error to ADMINS" in caplog.text
    assert "smtp down" in caplog.text


def test_replies_notices_and_word_to_admins_raise_no_warning_on_this_django(settings):
    settings.MAIL_FAILURE_NOTICES = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert send("onedest@bugs.example.com").reply_sent
        assert send("nobody@example.com").notice_sent
        send("broken@example.com", raise_request_exception=False)
    assert len(mail.outbox) == 3
