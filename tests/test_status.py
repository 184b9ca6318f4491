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
        s = outcome.status
        assert re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", s.enhanced), outcome
        assert str(s.smtp_code)[0] == s.enhanced[0], outcome
        if s.is_success:
            assert s.exit_code == 0
        elif s.is_temporary:
            # Must defer in both MTAs.
            assert s.exit_code in DEFERS_IN_BOTH
        else:
            # Must bounce in both MTAs.
            assert s.exit_code not in POSTFIX_DEFERS | EXIM_DEFERS | {0}


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
