#!/usr/bin/env bash
# The example help desk, run on its sample messages. Installs the project
# into the current Python first (use a virtualenv: Debian's own python3
# refuses pip installs), and starts from an empty SQLite database.
set -uo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(sys.prefix != sys.base_prefix or not
        os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    echo "demo.sh: $PYTHON is the system's Python, which refuses pip installs." >&2
    echo "Run it inside a virtualenv: python3 -m venv .venv && . .venv/bin/activate" >&2
    exit 1
fi
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e .. || exit 1
export DJANGO_SETTINGS_MODULE=exampleproject.settings
rm -rf db.sqlite3 mailstore
"$PYTHON" manage.py migrate --verbosity 0 || exit 1

show() {  # show TITLE FILE SENDER RECIPIENT
    printf '\n=== %s\n$ manage.py readmail messages/%s --sender %s --recipient %s\n' "$1" "$2" "$3" "$4"
    "$PYTHON" manage.py readmail "messages/$2" --sender "$3" --recipient "$4" 2>&1
    echo "exit status $?"
}

show "A new ticket: the view replies (printed by the console e-mail backend)" \
    new-ticket.eml ann@example.org help@bugs.example.com
show "The same message again, as an MTA retrying would deliver it: answered from the store, no second ticket, no second reply" \
    new-ticket.eml ann@example.org help@bugs.example.com
show "A reply to ticket-1@: the address resolves with a capture, no reply is sent" \
    comment.eml ann@example.org ticket-1@bugs.example.com
show "A newsletter: ignored" newsletter.eml deals@shop.example.net newsletter@example.com
show "An unknown recipient: bounced with 5.1.1" unknown.eml bob@example.org nobody@example.com

printf '\n=== The same unknown recipient through django-mailpipe, as Postfix or Exim run it\n'
echo '$ django-mailpipe --settings exampleproject.settings --pythonpath . --sender bob@example.org --recipient nobody@example.com < messages/unknown.eml'
# The pipe's line ends without a line break (Postfix would log it as a
# trailing space) unless it goes to a terminal: printf gives it one here.
line=$("$PYTHON" -m mailserver.pipe --settings exampleproject.settings --pythonpath . \
    --sender bob@example.org --recipient nobody@example.com < messages/unknown.eml)
status=$?
printf '%s\n' "$line"
echo "exit status $status (Postfix and Exim bounce on 67; the line above is the DSN text)"
