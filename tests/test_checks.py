import sys
import types

import pytest
from django.core import checks

from mailserver.checks import check_mailconf
from mailserver.mailbox import include, mailbox


@pytest.fixture
def mailconf_module():
    """Registers throwaway mailconf modules and removes them afterwards."""
    made = []

    def make(name, **attrs):
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module
        made.append(name)
        return name

    yield make
    for name in made:
        sys.modules.pop(name, None)


def ids(errors):
    return sorted(e.id for e in errors)


def test_the_test_project_is_clean():
    assert check_mailconf() == []


def test_registered_with_manage_py_check():
    assert check_mailconf in checks.registry.registry.get_checks()


def test_missing_root_mailconf(settings):
    del settings.ROOT_MAILCONF
    assert ids(check_mailconf()) == ["mailserver.E001"]


def test_unimportable_root_mailconf(settings):
    settings.ROOT_MAILCONF = "tests.no_such_mailconf"
    [error] = check_mailconf()
    assert error.id == "mailserver.E002" and "tests.no_such_mailconf" in error.msg


def test_bad_regex_and_bad_views(settings, mailconf_module):
    def view(request):
        pass

    child = mailconf_module(
        "tests._child_conf",
        mailpatterns=[
            mailbox(r"^ok$", view, name="a"),
            mailbox(r"^(unclosed", view),
        ],
    )
    settings.ROOT_MAILCONF = mailconf_module(
        "tests._bad_conf",
        mailpatterns=[
            mailbox(r"[z-a]", view),
            mailbox(r"^x$", "tests.mailapp.mailers.no_such_view"),
            mailbox(r"^y$", "no_such_module.view"),
            mailbox(r"@c\.d$", include(child)),
        ],
    )
    errors = check_mailconf()
    assert ids(errors) == [
        "mailserver.E003",
        "mailserver.E003",
        "mailserver.E004",
        "mailserver.E004",
    ]
    assert any("no_such_view" in e.msg for e in errors)


def test_duplicate_route_names(settings, mailconf_module):
    def view(request):
        pass

    settings.ROOT_MAILCONF = mailconf_module(
        "tests._dup_conf",
        mailpatterns=[
            mailbox(r"^a$", view, name="same"),
            mailbox(r"^b$", view, name="same"),
            mailbox(r"^c$", view, name="other"),
            # The same name in another namespace is no duplicate.
            mailbox(r"@x$", include(([mailbox(r"^a$", view, name="same")], "ns"))),
        ],
    )
    errors = check_mailconf()
    assert ids(errors) == ["mailserver.W001"]
    assert "'same'" in errors[0].msg


def test_both_pattern_lists_in_one_module(settings, mailconf_module):
    def view(request):
        pass

    # An included module is checked too, and once however often it is included.
    child = mailconf_module(
        "tests._both_child_conf",
        mailpatterns=[mailbox(r"^a$", view)],
        urlpatterns=[mailbox(r"^b$", view)],
    )
    settings.ROOT_MAILCONF = mailconf_module(
        "tests._both_conf",
        mailpatterns=[
            mailbox(r"@x$", include(child)),
            mailbox(r"@y$", include(child)),
        ],
    )
    [warning] = check_mailconf()
    assert warning.id == "mailserver.W002" and warning.obj == "tests._both_child_conf"
    assert "'mailpatterns' and 'urlpatterns'" in warning.msg and warning.hint
    # The warning tells the truth: the urlpatterns are not read.
    from mailserver import resolve
    from mailserver.exceptions import RecipientNotFound

    assert resolve("a@x").func is view
    with pytest.raises(RecipientNotFound):
        resolve("b@x")


def test_either_pattern_list_alone_is_fine(settings, mailconf_module):
    def view(request):
        pass

    settings.ROOT_MAILCONF = mailconf_module(
        "tests._legacy_conf",
        urlpatterns=[mailbox(r"@x$", include(([mailbox(r"^a$", view)], "ns")))],
    )
    assert check_mailconf() == []
