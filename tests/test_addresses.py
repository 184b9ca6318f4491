from mailserver.addresses import parse, split


def test_brackets_and_case_of_the_domain():
    a = parse("<Ticket@BUGS.Example.COM>", delimiter="+", case_insensitive=False)
    assert (a.local, a.domain, str(a)) == ("Ticket", "bugs.example.com", "Ticket@bugs.example.com")


def test_local_part_case_is_kept_unless_asked():
    assert parse("Ann@x.org", delimiter="", case_insensitive=True).local == "ann"
    assert parse("Ann@x.org", delimiter="", case_insensitive=False).local == "Ann"


def test_subaddress_is_split_off():
    a = parse("ticket+42@x.org", delimiter="+", case_insensitive=False)
    assert (str(a), a.subaddress, a.full) == ("ticket@x.org", "42", "ticket+42@x.org")
    # Several delimiter characters, as Postfix allows: the first one found splits.
    a = parse("list-owner+x@x.org", delimiter="+-", case_insensitive=False)
    assert (a.local, a.subaddress, a.delimiter) == ("list", "owner+x", "-")
    # A leading delimiter is part of the name; a quoted local part is left whole.
    assert parse("+x@y", delimiter="+", case_insensitive=False).local == "+x"
    assert parse('"a+b"@y', delimiter="+", case_insensitive=False).local == '"a+b"'
    # An empty tag is still a subaddress: "ticket+@" is "ticket@".
    a = parse("ticket+@x.org", delimiter="+", case_insensitive=False)
    assert (str(a), a.subaddress, a.full) == ("ticket@x.org", "", "ticket+@x.org")


def test_internationalised_domains_match_in_unicode():
    assert parse("a@xn--bcher-kva.example", delimiter="").domain == "bücher.example"
    assert parse("a@BÜCHER.example", delimiter="").domain == "bücher.example"
    # Broken punycode is kept as given rather than raising.
    assert parse("a@xn--zz-.example", delimiter="").domain == "xn--zz-.example"


def test_split_at_the_last_at_sign():
    assert split('"a@b"@c.d') == ('"a@b"', "c.d")
    assert split("postmaster") == ("postmaster", "")


def test_settings_supply_the_defaults(settings):
    settings.MAIL_SUBADDRESS_DELIMITER = "-"
    settings.MAIL_CASE_INSENSITIVE_LOCAL_PART = True
    a = parse("Bob-Tag@X.org")
    assert (a.local, a.subaddress) == ("bob", "tag")
