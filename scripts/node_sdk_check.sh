#!/usr/bin/env bash
# The official Node SDK (smile-identity-core 3.2.1, from npm) against `smile-recon sandbox
# --tls`, unchanged: see scripts/node_sdk_check.js for what it proves. The SDK speaks only
# https; it trusts the sandbox's self-signed certificate through NODE_EXTRA_CA_CERTS.
# Run by .ci/run after the Python SDK check; installs node (if missing) and the SDK into
# its own directory (kept between runs, like the Python venv).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/sandbox.sh
. scripts/lib/sandbox.sh

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "node/npm not found: installing them with apt-get"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq nodejs npm >/dev/null
fi
echo "node $(node --version), npm $(npm --version)"

SDK_DIR="${NODE_SDK_DIR:-${TMPDIR:-/tmp}/smile-recon-node-sdk}"
SDK_VERSION=3.2.1
installed=$(node -e "try { console.log(require('$SDK_DIR/node_modules/smile-identity-core/package.json').version) } catch (e) {}")
if [ "$installed" != "$SDK_VERSION" ]; then
    rm -rf "$SDK_DIR"
    mkdir -p "$SDK_DIR"
    printf '{"name": "smile-recon-node-sdk-check", "private": true}\n' >"$SDK_DIR/package.json"
    # --ignore-scripts: the SDK's only script is a preinstall guard meant for its own repo.
    (cd "$SDK_DIR" && npm install --no-audit --no-fund --ignore-scripts --save-exact \
        "smile-identity-core@$SDK_VERSION" >/dev/null)
fi

cargo build --locked --quiet
bin="${CARGO_TARGET_DIR:-target}/debug/smile-recon"
export SMILE_API_KEY="ci-node-sdk-key-$$-$RANDOM"
work=$(mktemp -d)
cert="$work/sandbox.pem"
"$bin" sandbox --tls --tls-cert "$cert" --listen 127.0.0.1:0 --partner-id 002 --people 200 \
    >"$work/out" 2>"$work/err" &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

url=$(wait_listening "$pid" "$work/out" "$work/err")
case "$url" in
https://*) ;;
*)
    echo "sandbox --tls printed a non-https address: $url" >&2
    exit 1
    ;;
esac

# One signature vector computed by smile-recon with the same key, for the SDK to match.
timestamp="2026-11-22T15:37:19.123Z"
signature=$("$bin" sign --partner-id 002 --timestamp "$timestamp")

# Loopback only: no proxy between node and the sandbox, and certificate checks on.
run_node() {
    env -u HTTPS_PROXY -u https_proxy -u HTTP_PROXY -u http_proxy -u ALL_PROXY -u all_proxy \
        -u NODE_TLS_REJECT_UNAUTHORIZED -u NODE_EXTRA_CA_CERTS NO_PROXY="127.0.0.1,localhost" "$@"
}

# Without the certificate, node must refuse the sandbox (exit 3 below): the trust is real.
status=0
run_node node -e "
    const https = require('https');
    https.get('$url/v1/services', () => process.exit(0)).on('error', (e) => {
        console.log('ok: without NODE_EXTRA_CA_CERTS node refuses the sandbox (' + e.code + ')');
        process.exit(3);
    });" || status=$?
if [ "$status" -ne 3 ]; then
    echo "FAIL: node without the sandbox's certificate exited $status (3 expected: refused)" >&2
    exit 1
fi

run_node NODE_EXTRA_CA_CERTS="$cert" node scripts/node_sdk_check.js "$SDK_DIR" "$url" 002 \
    "$timestamp $signature"

stop_cleanly "$pid" "$work/err" "sandbox --tls"
