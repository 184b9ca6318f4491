import re

from mailserver.status import EX_TEMPFAIL, Outcome

# What Postfix's pipe(8) and Exim's pipe transport (default temp_errors
# 75:73) do with an exit status: 0 delivers, 75 defers in both, anything
# else bounces.
DEFERS_IN_BOTH = {75}
POSTFIX_DEFERS = {71, 75}
EXIM_DEFERS = {73, 75}


def test_every_row_is_consistent():
    for outcome in Outcome:
        assert re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", outcome.enhanced), outcome
        assert str(outcome.smtp_code)[0] == outcome.enhanced[0], outcome
        if outcome.is_success:
            assert outcome.exit_code == 0
        elif outcome.is_temporary:
            # Must defer in both MTAs.
            assert outcome.exit_code in DEFERS_IN_BOTH
        else:
            # Must bounce in both MTAs.
            assert outcome.exit_code not in POSTFIX_DEFERS | EXIM_DEFERS | {0}


# The README's outcome table, row by row: (value, SMTP, enhanced, exit).
TABLE = [
    ("delivered", 250, "2.0.0", 0),
    ("ignored", 250, "2.0.0", 0),
    ("discarded", 250, "2.0.0", 0),
    ("queued", 250, "2.0.0", 0),
    ("unknown_recipient", 550, "5.1.1", 67),
    ("bad_recipient", 553, "5.1.3", 65),
    ("bad_sender", 553, "5.1.7", 65),
    ("permission_denied", 550, "5.7.1", 77),
    ("rejected", 554, "5.7.0", 69),
    ("malformed", 554, "5.6.0", 65),
    ("too_big", 552, "5.3.4", 65),
    ("temporary_failure", 451, "4.3.0", 75),
    ("misconfigured", 451, "4.3.5", 75),
]


def test_the_codes_are_the_documented_table():
    assert [(o.value, o.smtp_code, o.enhanced, o.exit_code) for o in Outcome] == TABLE


def test_rows_are_members_with_their_own_attributes():
    # As http.HTTPStatus: the codes live on the member, not behind forwarding.
    assert "__getattr__" not in vars(Outcome)
    row = Outcome.TOO_BIG
    assert {"smtp_code", "enhanced", "exit_code", "text"} <= set(vars(row))
    assert Outcome("too_big") is row and row.value == "too_big" and row.name == "TOO_BIG"
    assert (row.is_success, row.is_temporary, row.is_permanent) == (False, False, True)
    assert Outcome.MISCONFIGURED.is_temporary and Outcome.DISCARDED.is_success
    assert row.reply() == "552 5.3.4 message too big"
    assert row.dsn_line("over 10 bytes") == "5.3.4 over 10 bytes"
    # Three rows share 250 2.0.0 yet stay distinct members, not aliases.
    assert len({Outcome.DELIVERED, Outcome.IGNORED, Outcome.DISCARDED}) == 3
    # The old spelling through .status still reads the same row.
    assert row.status.enhanced == "5.3.4"


def test_the_codes_the_issue_fixes():
    assert (Outcome.DELIVERED.exit_code, Outcome.DELIVERED.enhanced) == (0, "2.0.0")
    assert (Outcome.UNKNOWN_RECIPIENT.exit_code, Outcome.UNKNOWN_RECIPIENT.enhanced) == (
        67,
        "5.1.1",
    )
    assert (Outcome.PERMISSION_DENIED.exit_code, Outcome.PERMISSION_DENIED.enhanced) == (
        77,
        "5.7.1",
    )
    assert (Outcome.MALFORMED.exit_code, Outcome.MALFORMED.enhanced) == (65, "5.6.0")
    assert Outcome.TOO_BIG.enhanced == "5.3.4"
    assert Outcome.TEMPORARY_FAILURE.exit_code == EX_TEMPFAIL == 75
    assert Outcome.TEMPORARY_FAILURE.enhanced.startswith("4.")


def test_lines_never_carry_a_line_break():
    assert Outcome.UNKNOWN_RECIPIENT.dsn_line("a\r\nb\n c") == "5.1.1 a b c"
    assert Outcome.TOO_BIG.reply("x\ny") == "552 5.3.4 x y"
