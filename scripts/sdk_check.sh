#!/usr/bin/env bash
# The official Python SDK (smile-id-core 3.0.1, from PyPI) against the sandbox binary,
# unchanged: see scripts/sdk_check.py for what it proves. Run by .ci/run after the tests
# (which built target/debug/smile-recon); installs its own venv.
set -euo pipefail
cd "$(dirname "$0")/.."

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

url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$out")
    [ -n "$url" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    echo "the sandbox did not start:" >&2
    cat "$err" >&2
    exit 1
fi

"$VENV/bin/python" scripts/sdk_check.py "$url" 002

# SIGTERM must stop it cleanly, with exit status 0.
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
if [ "$status" -ne 0 ]; then
    echo "the sandbox exited $status on SIGTERM:" >&2
    cat "$err" >&2
    exit 1
fi
echo "sandbox stopped cleanly on SIGTERM"
