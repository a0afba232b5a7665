#!/usr/bin/env bash
# Runs the irctest conformance suite (https://github.com/progval/irctest) against natter.
#
#   tools/irctest/run.sh                 # the RFC 1459/2812 selection
#   tools/irctest/run.sh wide            # the wider selection (all but services,
#                                        # implementation-specific, deprecated, strict)
#   tools/irctest/run.sh -- -k Kick      # extra pytest arguments after --
#
# IRCTEST_DIR: an existing irctest checkout to use (else it is cloned at the pinned commit
# into target/irctest). NATTER_BIN: the natter binary (else target/debug/natter is built).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
commit=b00c039766f5c497920dd787f7cb0e0005bd5ce0
dir="${IRCTEST_DIR:-$root/target/irctest}"
if [ ! -d "$dir/irctest" ]; then
    git clone --quiet https://github.com/progval/irctest "$dir"
fi
git -C "$dir" checkout --quiet "$commit" 2>/dev/null || echo "note: irctest checkout is not at $commit"
if [ ! -x "$dir/.venv/bin/python" ]; then
    python3 -m venv "$dir/.venv"
    "$dir/.venv/bin/pip" install --quiet 'pytest!=9.0.0' ecdsa filelock
fi
# The WebSocket tests' client (they skip without it).
"$dir/.venv/bin/python" -c 'import websockets' 2>/dev/null || "$dir/.venv/bin/pip" install --quiet websockets
if [ -z "${NATTER_BIN:-}" ]; then
    (cd "$root" && cargo build --quiet -p natter)
    NATTER_BIN="$root/target/debug/natter"
fi
export NATTER_BIN
cp "$here/natter.py" "$dir/irctest/controllers/natter.py"
markers='not services and not implementation-specific and not deprecated and not strict'
if [ "${1:-}" = wide ]; then
    shift
else
    markers="(RFC1459 or RFC2812) and $markers"
fi
[ "${1:-}" = -- ] && shift
cd "$dir"
# Only the server tests judge the server: irctest's own self-tests (irctest/self_tests) never
# talk to it.
exec .venv/bin/python -m pytest --controller irctest.controllers.natter -m "$markers" -p no:warnings -q \
    irctest/server_tests "$@"
