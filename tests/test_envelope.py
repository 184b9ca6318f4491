from mailserver.envelope import Envelope, from_exim_environ


def test_exim_environment_rebuilds_the_affixes():
    env = {
        "SENDER": "ann@example.org",
        "LOCAL_PART_PREFIX": "owner-",
        "LOCAL_PART": "list",
        "LOCAL_PART_SUFFIX": "+tag",
        "DOMAIN": "mail.test",
        "RECIPIENT": "list@mail.test",
        "MESSAGE_ID": "1abc-000001-AB",
    }
    assert from_exim_environ(env) == (
        "ann@example.org",
        ["owner-list+tag@mail.test"],
        "1abc-000001-AB",
    )


def test_exim_local_parts_that_need_quotes():
    assert from_exim_environ({"LOCAL_PART": "odd name", "DOMAIN": "d"})[1] == ['"odd name"@d']
    assert from_exim_environ({"LOCAL_PART": 'a"b\\c', "DOMAIN": "d"})[1] == ['"a\\"b\\\\c"@d']
    assert from_exim_environ({"LOCAL_PART": "jörg.x", "DOMAIN": "d"})[1] == ["jörg.x@d"]
    assert from_exim_environ({"LOCAL_PART": "a..b", "DOMAIN": "d"})[1] == ['"a..b"@d']


def test_not_exims_environment():
    assert from_exim_environ({"HOME": "/root", "USER": "root"}) == (None, [], "")
    # RECIPIENT alone, as a hand-made environment might give it.
    assert from_exim_environ({"RECIPIENT": "x@y"}) == (None, ["x@y"], "")
    # The null sender is kept apart from "not given".
    assert from_exim_environ({"SENDER": "", "LOCAL_PART": "a", "DOMAIN": "d"})[0] == ""


def test_one_envelope_per_recipient():
    e = Envelope(sender="", recipient="a@b", queue_id="Q")
    f = e.for_recipient("c@d")
    assert (f.sender, f.recipient, f.queue_id) == ("", "c@d", "Q")
    assert e.recipient == "a@b"
