"""
The original project's README example, written out as a user would have it
(the only change: print is a function in Python 3), resolved and run.
"""

import sys
import textwrap

import pytest
from django.core import mail

from mailserver import Outcome
from mailserver.test import Client

FILES = {
    "myproject/__init__.py": "",
    "myproject/mailbox.py": """
        from mailserver.mailbox import *
        urlpatterns = patterns('',
            (r'@bugs.example.com', include('myapp.mailbox')),
        )
    """,
    "myapp/__init__.py": "",
    "myapp/mailbox.py": """
        from mailserver.mailbox import *
        urlpatterns = patterns('',
            (r'^onedest', 'myapp.mailers.reply'),
        )
    """,
    "myapp/mailers.py": """
        from mailserver import EmailResponse

        def reply(request):
            print("Got email %s, Reply!" % request)
            return EmailResponse(
                    from_email=request.get_recipient_display(),
                    to=request['From'],
                    body=request.get_body(),
                    subject="Re: %s" % request['Subject'])
    """,
}

MESSAGE = b"""\
From: Ann Example <ann@example.org>
To: The Bugs <onedest@bugs.example.com>
Subject: It crashes

When I click the button.
"""


@pytest.fixture
def original_project(tmp_path, monkeypatch):
    for name, text in FILES.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "myproject.mailbox"
    for module in [m for m in sys.modules if m.split(".")[0] in ("myproject", "myapp")]:
        del sys.modules[module]


@pytest.mark.django_db
def test_the_original_example_replies(original_project, settings, capsys):
    settings.ROOT_MAILCONF = original_project
    result = Client().send(MESSAGE, recipient="onedest@bugs.example.com")
    assert result.outcome is Outcome.DELIVERED and result.reply_sent
    [reply] = mail.outbox
    assert reply.from_email == "The Bugs <onedest@bugs.example.com>"
    assert reply.to == ["Ann Example <ann@example.org>"]
    assert reply.subject == "Re: It crashes"
    assert reply.body == "When I click the button.\n"
    assert "Got email <EmailRequest" in capsys.readouterr().out
    assert Client().send(MESSAGE, recipient="twodest@bugs.example.com").outcome is (
        Outcome.UNKNOWN_RECIPIENT
    )
