import pytest

from mailserver.exceptions import NoReverseMatch, RecipientNotFound
from mailserver.mailbox import include, mailbox, patterns
from mailserver.resolvers import MailboxPattern, MailboxResolver, resolve, reverse
from tests.mailapp import mailers


def test_the_original_example():
    """patterns() with a prefix-less dotted view, include() of a dotted module,
    and the domain stripped before the included patterns see the rest."""
    match = resolve("onedest@bugs.example.com")
    assert match.func is mailers.reply
    assert match.args == () and match.kwargs == {}


def test_patterns_returns_routes_with_the_view_prefix():
    routes = patterns(
        "tests.mailapp.mailers", (r"^a$", "echo_args"), (r"^b$", "reply", {"x": 1}, "b")
    )
    assert [type(r) for r in routes] == [MailboxPattern, MailboxPattern]
    assert routes[0].callback is mailers.echo_args
    assert routes[1].callback is mailers.reply
    assert routes[1].default_args == {"x": 1} and routes[1].name == "b"


def test_dotted_views_import_lazily():
    route = mailbox(r"^x$", "tests.mailapp.nonexistent.view")
    # Building the route does not import; using it does.
    with pytest.raises(ImportError):
        route.callback


def test_local_part_includes_strip_a_prefix():
    match = resolve("support-billing@example.com")
    assert match.func is mailers.echo_args
    assert match.kwargs == {"queue": "billing", "via": "support"}
    assert match.route_name == "queue"


def test_includes_nested_two_deep_with_namespaces():
    match = resolve("dev-subscribe@lists.example.com")
    assert match.kwargs == {"list": "dev", "command": "subscribe"}
    assert match.namespaces == ["lists", "listcommands"]
    assert match.namespace == "lists:listcommands"
    assert match.view_name == "lists:listcommands:command"
    assert resolve("dev@lists.example.com").route_name == "post"


def test_whole_address_patterns_and_positional_groups():
    match = resolve("12-reply@tickets.example.com")
    assert (match.func, match.args, match.kwargs) == (mailers.ticket_comment, (), {"ticket": "12"})
    match = resolve("ann.lee@positional.example.com")
    assert match.args == ("ann", "lee") and match.kwargs == {}


def test_pattern_kwargs_are_merged():
    assert resolve("Case@example.com").kwargs == {"extra": "yes"}


def test_domain_is_normalised_and_unicode():
    assert resolve("<onedest@BUGS.EXAMPLE.COM>").func is mailers.reply
    assert resolve("echo@xn--bcher-kva.example").func is mailers.echo_args


def test_local_part_case_matters_unless_configured(settings):
    with pytest.raises(RecipientNotFound):
        resolve("case@example.com")
    settings.MAIL_CASE_INSENSITIVE_LOCAL_PART = True
    # Lower-cased before matching: patterns are then written in lower case.
    with pytest.raises(RecipientNotFound):
        resolve("Case@example.com")
    assert resolve("ONEDEST@bugs.example.com").func is mailers.reply


def test_subaddress_is_split_before_matching():
    assert resolve("onedest+anything@bugs.example.com").func is mailers.reply


def test_no_match_lists_what_was_tried():
    with pytest.raises(RecipientNotFound) as info:
        resolve("nobody@bugs.example.com")
    tried = info.value.tried
    # The include matched and its child was tried; then every other route.
    assert [p.regex_string for p in tried[0]] == ["@bugs.example.com", "^onedest"]
    assert any(t[0].regex_string == r"^broken@example\.com$" for t in tried)
    assert "nobody@bugs.example.com" in str(info.value)


def test_include_forms():
    module, app_name, namespace = include("tests.mailapp.lists")
    assert module.__name__ == "tests.mailapp.lists" and app_name == namespace == "lists"
    routes = [mailbox(r"^x$", mailers.reply, name="x")]
    resolver = mailbox(r"@a\.b$", include((routes, "app"), namespace="inst"))
    assert isinstance(resolver, MailboxResolver)
    assert (resolver.app_name, resolver.namespace) == ("app", "inst")
    assert resolver.resolve("x@a.b").namespace == "inst"
    with pytest.raises(ValueError):
        include((routes, "a", "b"))
    with pytest.raises(TypeError):
        mailbox(r"^x", 42)


def test_reverse_through_includes_and_namespaces():
    assert reverse(
        "lists:listcommands:command", kwargs={"list": "dev", "command": "subscribe"}
    ) == ("dev-subscribe@lists.example.com")
    assert reverse("lists:listcommands:post", kwargs={"list": "dev"}) == "dev@lists.example.com"
    assert reverse("ticket-comment", kwargs={"ticket": 42}) == "42-reply@tickets.example.com"
    assert reverse("queue", kwargs={"queue": "billing"}) == "support-billing@example.com"
    assert reverse("case") == "Case@example.com"


def test_reverse_with_positional_args():
    routes = [mailbox(r"^(\d+)-(\w+)@x\.org$", mailers.echo_args, name="pos")]
    resolver = MailboxResolver("", routes)
    # A mailconf given as a list rather than a module path.
    import sys
    import types

    module = types.ModuleType("tests._reverse_args_conf")
    module.mailpatterns = routes
    sys.modules[module.__name__] = module
    try:
        assert reverse("pos", args=[7, "ab"], mailconf=module.__name__) == "7-ab@x.org"
    finally:
        del sys.modules[module.__name__]
    assert resolver.resolve("7-ab@x.org").args == ("7", "ab")


def test_reverse_errors_are_clear():
    with pytest.raises(NoReverseMatch, match="No mail route named 'nope'"):
        reverse("nope")
    with pytest.raises(NoReverseMatch, match="cannot be reversed"):
        reverse("ticket-comment", kwargs={"ticket": "not-a-number"})
    with pytest.raises(NoReverseMatch, match="cannot be reversed"):
        reverse("ticket-comment", kwargs={"wrong": 1})
    with pytest.raises(ValueError):
        reverse("queue", args=[1], kwargs={"queue": 1})


def test_reversed_addresses_resolve_back():
    address = reverse(
        "lists:listcommands:command", kwargs={"list": "ops", "command": "unsubscribe"}
    )
    match = resolve(address)
    assert match.view_name == "lists:listcommands:command"
    assert match.kwargs == {"list": "ops", "command": "unsubscribe"}
