#!/bin/sh
# Chromium and its WebDriver from Debian's packages, for the admin's browser
# tests (tests/admin/test_browser.py drives /usr/bin/chromium through
# /usr/bin/chromedriver with Selenium; no browser is ever downloaded). As
# root; does nothing when both are there.
set -eu

export DEBIAN_FRONTEND=noninteractive

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-browser.sh: must run as root" >&2
    exit 1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version
