import pytest

from mailserver.addresses import a_label_length, parse, split, syntax_error


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


# -- syntax_error: what an envelope address may not be ------------------------------


@pytest.mark.parametrize(
    "address, error",
    [
        ("insp\x85ect@example.com", "control character U+0085"),  # NEL
        ("a\x9bb@example.com", "control character U+009B"),  # C1 CSI
        ("a\x7fb@example.com", "control character U+007F"),
        ("inspect@exa\u2028mple.com", "line separator U+2028"),
        ("ann@example.org\u2029", "paragraph separator U+2029"),
        # The bidi embeddings and overrides, then the isolates.
        *[(f"a{chr(c)}b@x.org", f"format character U+{c:04X}") for c in range(0x202A, 0x202F)],
        *[(f"a{chr(c)}b@x.org", f"format character U+{c:04X}") for c in range(0x2066, 0x206A)],
        ("a\u200bb@example.com", "format character U+200B"),  # zero-width space
        ("a\ufeffb@example.com", "format character U+FEFF"),
        ("a\u00a0b@example.com", "space character U+00A0"),
        ('"a\u3000b"@example.com', "space character U+3000"),  # not even quoted
        ("a\udcffb@example.com", "surrogate (not UTF-8) U+DCFF"),  # an undecodable argv byte
    ],
)
def test_characters_no_address_may_hold(address, error):
    assert syntax_error(address) == f"{error} in address"


def test_an_ascii_space_is_allowed_only_quoted():
    assert syntax_error('"ann ortiz"@example.org') is None
    assert syntax_error("ann ortiz@example.org") == "invalid local part"


def test_local_part_is_64_octets_of_utf_8():
    assert syntax_error("a" * 64 + "@example.com") is None
    assert syntax_error("a" * 65 + "@example.com") == "local part of 65 octets is longer than 64"
    assert syntax_error("x" * 300) == "local part of 300 octets is longer than 64"
    # 32 two-octet characters fit; 33 do not, though they are 33 characters.
    assert syntax_error("ü" * 32 + "@example.com") is None
    assert syntax_error("ü" * 33 + "@example.com") == "local part of 66 octets is longer than 64"
    # A quoted local part counts its quotes: they are sent.
    assert syntax_error('"' + "a" * 62 + '"@x.org') is None
    assert syntax_error('"' + "a" * 63 + '"@x.org') is not None


def test_labels_are_63_octets_as_a_labels():
    assert syntax_error("a@" + "b" * 63 + ".example") is None
    assert syntax_error("a@" + "b" * 64 + ".example") == (
        "domain label of 64 octets is longer than 63"
    )
    assert syntax_error("a@" + "c" * 100 + ".org") is not None
    # An internationalised label is measured as it goes to DNS: its A-label.
    label = "".join(chr(0x4E00 + 997 * i) for i in range(20))  # CJK, far apart
    assert len(label.encode("utf-8")) == 60
    a_label = "xn--" + label.encode("punycode").decode()
    assert a_label_length(label) == len(a_label) == 64
    assert syntax_error(f"a@{label}.example") == (
        f"domain label of {len(a_label)} octets is longer than 63"
    )
    assert syntax_error(f"a@{a_label}.example") is not None  # the same label spelt as sent
    # ...and a label whose UTF-8 is over 63 octets may fit as an A-label.
    label = "ü" * 40  # 80 octets of UTF-8
    assert a_label_length(label) <= 63 and syntax_error(f"a@{label}.example") is None
    assert a_label_length("BÜCHER") == a_label_length("bücher") == len("xn--bcher-kva")


def test_domain_is_255_octets_as_a_labels():
    # Seven CJK labels of 33 octets: 241 octets of path, 293 in DNS.
    label = "".join(chr(0x4E00 + 3467 * i) for i in range(11))
    assert (len(label.encode("utf-8")), a_label_length(label)) == (33, 41)
    domain = ".".join([label] * 7)
    assert len(f"<a@{domain}>".encode()) == 241
    assert syntax_error(f"a@{domain}") == "domain of 293 octets is longer than 255"
    assert syntax_error("a@" + ".".join([label] * 6)) is None  # 251


def test_path_is_256_octets_with_its_brackets():
    domain = ".".join(["d" * 63, "d" * 63, "d" * 63, "d" * 50])  # 242 octets
    assert syntax_error("a" * 10 + "@" + domain) is None  # 253 octets, 255 with <>
    assert syntax_error("a" * 11 + "@" + domain) is None  # 254, 256 with <>
    assert syntax_error("a" * 12 + "@" + domain) == "address of 255 octets is longer than 254"
    # Brackets given with the address are not counted twice.
    assert syntax_error("<" + "a" * 11 + "@" + domain + ">") is None


def test_refused_addresses_are_quoted_back_without_their_hidden_characters(settings):
    from mailserver import Outcome
    from mailserver.test import Client

    result = Client().send(b"Subject: x\n\nhi\n", recipient="moc.elpmaxe\u202e@x.org")
    assert result.outcome is Outcome.BAD_RECIPIENT
    assert result.dsn_line() == (
        "5.1.3 <moc.elpmaxe\\u202e@x.org>: bad recipient address syntax "
        "(format character U+202E in address)"
    )
    result = Client().send(b"Subject: x\n\nhi\n", recipient="a@x.org", sender="b\x00\u2028@y.org")
    assert result.outcome is Outcome.BAD_SENDER
    assert result.reply().startswith("553 5.1.7 <b\\x00 @y.org>: ")
