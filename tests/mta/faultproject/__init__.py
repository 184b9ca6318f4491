"""
The help desk the fault-injection run delivers to (tests/mta/faults.py).

One address, help@mail.test, whose view writes one row per run and replies;
faults chosen from each message's number (plan.py) make the view raise, the
outgoing mail backend fail and the process die. Nothing in it knows about
mailserver.store: its rows are keyed by nothing the store provides, so a
message handled twice shows as two rows.
"""
