#!/usr/bin/env bash
# The sandbox's own job_status throughput under wrk (BENCHMARKS.md, "Sandbox throughput").
#   apt-get install -y wrk
#   bash scripts/bench_sandbox.sh [CONNECTIONS...]   (default: 16 64 256)
# Release build, 10,000 preloaded jobs, 10 s per run, loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk (apt-get install -y wrk)" >&2; exit 1; }
cargo build --release --locked --quiet
bin=./target/release/smile-recon
tmp=$(mktemp -d)
export SMILE_API_KEY="bench-key-$$"
"$bin" sandbox generate --people 10000 --seed 7 --registry "$tmp/people.csv" \
    --manifest "$tmp/poll.csv" --poll 2>/dev/null
"$bin" sandbox --listen 127.0.0.1:0 --registry "$tmp/people.csv" \
    --preload-jobs "$tmp/poll.jobs.csv" >"$tmp/out" 2>"$tmp/err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
url=""
for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on //p' "$tmp/out")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$tmp/err" >&2; exit 1; }
export BENCH_TS="2026-01-01T00:00:00.000Z"
BENCH_SIG=$("$bin" sign --partner-id 002 --timestamp "$BENCH_TS")
export BENCH_SIG BENCH_MANIFEST="$tmp/poll.csv"
for c in "${@:-16 64 256}"; do
    for conns in $c; do
        echo "== wrk -t2 -c$conns -d10s (job_status, $(nproc) cores shared by server and wrk)"
        wrk -t2 -c"$conns" -d10s --latency -s scripts/bench_job_status.lua "$url/v1/job_status"
    done
done
echo "== sandbox stats"
curl -s "$url/__sandbox/stats" | head -c 600; echo
