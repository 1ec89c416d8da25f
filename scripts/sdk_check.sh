#!/usr/bin/env bash
# The official Python SDK (smile-id-core 3.0.1, from PyPI) against the sandbox binary,
# unchanged: see scripts/sdk_check.py for what it proves. Run by .ci/run after the tests
# (which built target/debug/smile-recon); installs its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/sandbox.sh
. scripts/lib/sandbox.sh

VENV="${SDK_VENV:-${TMPDIR:-/tmp}/smile-recon-sdk-venv}"
if ! "$VENV/bin/python" -c 'import smile_id_core' 2>/dev/null; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check smile-id-core==3.0.1
fi

cargo build --locked --quiet
export SMILE_API_KEY="ci-sdk-check-key-$$-$RANDOM"
out=$(mktemp)
err=$(mktemp)
"${CARGO_TARGET_DIR:-target}/debug/smile-recon" sandbox --listen 127.0.0.1:0 --partner-id 002 --people 200 \
    >"$out" 2>"$err" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    rm -f "$out" "$err"
}
trap cleanup EXIT

url=$(wait_listening "$pid" "$out" "$err")

"$VENV/bin/python" scripts/sdk_check.py "$url" 002

stop_cleanly "$pid" "$err" "the sandbox"
