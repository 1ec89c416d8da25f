#!/usr/bin/env bash
# Renders the demo's HTML report in headless Chromium (Debian's `chromium`), fails on any
# console error, and writes a screenshot (docs/report.png with --update-screenshot).
# Usage: scripts/check_report_html.sh [--update-screenshot]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || true
  fi
fi
if ! command -v chromium >/dev/null; then
  echo "chromium is not available; skipping the HTML check" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --quiet --locked -- demo --dir "$work/demo" --rows 600 --people 600 >"$work/demo.log" 2>&1 \
  || { cat "$work/demo.log"; exit 1; }
for page in reverify reconcile; do
  html="$work/demo/$page/report.html"
  shot="$work/$page.png"
  timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size=1200,2600 --enable-logging=stderr --v=0 \
    --screenshot="$shot" "file://$html" 2>"$work/$page.log" || { cat "$work/$page.log"; exit 1; }
  if grep -E "CONSOLE|Uncaught|Failed to load resource" "$work/$page.log"; then
    echo "console errors rendering $page/report.html" >&2
    exit 1
  fi
  [ -s "$shot" ] || { echo "no screenshot for $page" >&2; exit 1; }
  echo "rendered $page/report.html without console errors"
done
if [ "${1:-}" = "--update-screenshot" ]; then
  cp "$work/reconcile.png" docs/report.png
  echo "updated docs/report.png"
fi
