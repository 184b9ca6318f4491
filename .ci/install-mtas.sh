#!/bin/sh
# Install a real Postfix and a real Exim 4 side by side for the end-to-end
# tests in tests/mta/. Debian 12, as root. Safe to run again: every step
# checks first whether it has been done.
#
# - Postfix comes from its package, preseeded as "No configuration" so the
#   system instance has no main.cf and never starts or takes port 25; the
#   tests run their own private instance with its own config directory.
# - exim4-daemon-light conflicts with the postfix package, so it is not
#   installed as a package: its .deb is unpacked and the binary placed at
#   /usr/sbin/exim4 (the path it re-executes itself from), with the libraries
#   it links and the Debian-exim user it drops privilege to. The tests add
#   their config file to /etc/exim4/trusted_configs for the length of a run,
#   so that `exim4 -C file` keeps root.
# - The pipe runs as an unprivileged user, "mailpipe".
set -eu

export DEBIAN_FRONTEND=noninteractive
PIPE_USER=${MTA_PIPE_USER:-mailpipe}
EXIM_PKG=exim4-daemon-light

if [ "$(id -u)" != 0 ]; then
    echo "install-mtas.sh: must run as root" >&2
    exit 1
fi

apt_updated=
apt_install() {
    # apt-get update only once, and only if something is missing.
    missing=
    for pkg in "$@"; do
        dpkg-query -W -f '${Status}\n' "$pkg" 2>/dev/null | grep -q 'ok installed' \
            || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# --- Postfix -----------------------------------------------------------------
if ! command -v postfix >/dev/null 2>&1 && [ ! -x /usr/sbin/postfix ]; then
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt_install postfix
fi
# Whatever the package did, no system instance may run during the tests.
if [ -f /etc/postfix/main.cf ] && /usr/sbin/postfix status >/dev/null 2>&1; then
    /usr/sbin/postfix stop >/dev/null 2>&1 || true
fi

# --- Exim ----------------------------------------------------------------------
# Libraries exim4-daemon-light links against (apt-cache depends), plus
# Debian's own python3 for the pipe's virtualenv (readable by the pipe user,
# unlike a python under /root).
apt_install libidn12 libgnutls-dane0 libgnutls30 libnsl2 libdb5.3 libpcre2-8-0 \
    libcrypt1 python3 python3-venv

if [ ! -x /usr/sbin/exim4 ]; then
    work=$(mktemp -d)
    # apt downloads as its _apt user, which must be able to write here.
    chmod 755 "$work"
    if getent passwd _apt >/dev/null; then chown _apt "$work"; fi
    (
        cd "$work"
        if [ -z "$apt_updated" ]; then apt-get update -qq; fi
        apt-get download -qq "$EXIM_PKG" >/dev/null
        dpkg-deb -x ./"$EXIM_PKG"_*.deb root
    )
    install -m 4755 -o root -g root "$work/root/usr/sbin/exim4" /usr/sbin/exim4
    rm -rf "$work"
fi

if ! getent passwd Debian-exim >/dev/null; then
    getent group Debian-exim >/dev/null || groupadd --system Debian-exim
    useradd --system --gid Debian-exim --home-dir /var/spool/exim4 \
        --no-create-home --shell /usr/sbin/nologin Debian-exim
fi

install -d -m 755 -o root -g root /etc/exim4
if [ ! -f /etc/exim4/trusted_configs ]; then
    install -m 644 -o root -g root /dev/null /etc/exim4/trusted_configs
fi

# --- milters ---------------------------------------------------------------------
# OpenDKIM and OpenDMARC for tests/mta/test_milters.py, which runs its own
# instances (in a mount namespace of their own, with a private resolv.conf)
# from contrib/auth/. Stop the system ones if the packages started them.
apt_install opendkim opendmarc
for svc in opendkim opendmarc; do
    if [ -x "/etc/init.d/$svc" ]; then
        "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
done

# --- the pipe user ---------------------------------------------------------------
if ! getent passwd "$PIPE_USER" >/dev/null; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$PIPE_USER"
fi

echo "postfix $(/usr/sbin/postconf -dh mail_version)"
/usr/sbin/exim4 -bV 2>/dev/null | head -n1 || true
