#!/usr/bin/env bash
# What the test suite needs besides pip packages, installed when missing:
# - Debian's `chromium`: tests/web drive the page in it with Playwright (browser
#   downloads are not available everywhere; JOCKEY_CHROMIUM names another binary);
# - `postgresql`: tests/examples/test_postgres.py starts a real server (initdb, pg_ctl).
# With apt-get (as root, or with password-less sudo) it installs them; otherwise
# it says what to install, and the tests that need them fail saying so too.
set -euo pipefail

missing=()
if [ ! -x "${JOCKEY_CHROMIUM:-/usr/bin/chromium}" ]; then
    missing+=(chromium)
fi
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    as_root=(sudo)
fi
if command -v apt-get >/dev/null && { [ "$(id -u)" = 0 ] || [ ${#as_root[@]} -gt 0 ]; }; then
    echo "tests/provision.sh: installing ${missing[*]} (Debian packages)"
    ${as_root[@]+"${as_root[@]}"} apt-get update -qq
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "tests/provision.sh: missing ${missing[*]}, and no apt-get to install them with." >&2
    echo "  Debian/Ubuntu: sudo apt-get install ${missing[*]}" >&2
    echo "  Elsewhere: install Chromium (set JOCKEY_CHROMIUM=/path/to/chromium if it is not" >&2
    echo "  /usr/bin/chromium) and a PostgreSQL server (initdb on PATH). Without them the" >&2
    echo "  browser and Postgres tests fail." >&2
fi
