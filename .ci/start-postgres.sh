#!/bin/sh
# PostgreSQL for the store's tests (tests/store, run a second time on it by
# bin/test): at 127.0.0.1:5432, user postgres, trust authentication. Debian,
# as root. Does nothing when one already answers there; otherwise installs
# the postgresql package if it is missing, lets the postgres user in from
# 127.0.0.1 without a password (a test machine's database, nothing else),
# and starts the cluster.
set -eu

export DEBIAN_FRONTEND=noninteractive

ready() {
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null
}

if command -v pg_isready >/dev/null && ready; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "start-postgres.sh: must run as root" >&2
    exit 1
fi
if ! dpkg-query -W -f '${Status}\n' postgresql 2>/dev/null | grep -q 'ok installed'; then
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
    # First match wins: ahead of the packaged password rules.
    sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
    || pg_ctlcluster --skip-systemctl-redirect "$version" main reload
tries=0
until ready; do
    tries=$((tries + 1))
    if [ "$tries" -gt 60 ]; then
        echo "start-postgres.sh: PostgreSQL did not come up" >&2
        exit 1
    fi
    sleep 0.5
done
