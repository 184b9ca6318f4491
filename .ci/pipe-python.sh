#!/bin/sh
# Prints the path of an interpreter of the same Python version as $1 that the
# pipe user (an unprivileged account, as Postfix and Exim run the pipe) can
# run, for the end-to-end tests' virtualenv (tests/mta/harness.py reads it
# from MTA_PIPE_PYTHON). As root.
#
# Debian's /usr/bin/python3 when the versions match. Otherwise (Django 6.x
# needs Python 3.12, Debian 12 has 3.11) a copy of $1's own installation,
# since an interpreter under root's home (pyenv's) is out of the pipe user's
# reach: /opt/django-mailserver-test/pythonX.Y, with the standard library
# (its compiled files too: the pipe user cannot write them), without its
# site-packages and test suite, world-readable, and, where the binary finds
# libpython by an absolute path into root's home, pointed at the copy's own
# lib/ with patchelf (installed from Debian's package if missing). Made once;
# run again, it only prints the path.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: pipe-python.sh PYTHON" >&2
    exit 2
fi
python=$1
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -x /usr/bin/python3 ] && [ "$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$version" ]; then
    echo /usr/bin/python3
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "pipe-python.sh: a copy of Python $version for the pipe user is made as root only" >&2
    exit 1
fi

target=/opt/django-mailserver-test/python$version
if [ -x "$target/bin/python$version" ]; then
    echo "$target/bin/python$version"
    exit 0
fi
base=$("$python" -c 'import sys; print(sys.base_prefix)')
libdir=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR") or "")')
ldlibrary=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("LDLIBRARY") or "")')
binary=$base/bin/python$version
if [ ! -x "$binary" ]; then
    echo "pipe-python.sh: no $binary to copy" >&2
    exit 1
fi

staging=$target.partial
rm -rf "$staging"
mkdir -p "$staging/bin" "$staging/lib"
cp -p "$binary" "$staging/bin/"
# The shared libpython, when the interpreter was built with one.
if [ -n "$ldlibrary" ] && [ -e "$libdir/$ldlibrary" ]; then
    cp -a "$libdir"/libpython"$version"*.so* "$staging/lib/"
fi
tar -C "$base/lib" -cf - \
    --exclude="python$version/site-packages" \
    --exclude="python$version/test" \
    --exclude="python$version/idlelib" \
    --exclude="python$version/tkinter" \
    "python$version" | tar -C "$staging/lib" -xf -
if readelf -d "$staging/bin/python$version" 2>/dev/null | grep -q 'R.*PATH'; then
    if ! command -v patchelf >/dev/null; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends patchelf >/dev/null
    fi
    patchelf --set-rpath '$ORIGIN/../lib' "$staging/bin/python$version"
fi
mkdir -p "$staging/lib/python$version/site-packages"
chmod -R a+rX "$staging"
chmod a+rx /opt/django-mailserver-test 2>/dev/null || true
mv "$staging" "$target"
echo "$target/bin/python$version"
