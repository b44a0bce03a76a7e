#!/usr/bin/env bash
# The real-browser test: headless Chromium (Debian's chromium + chromium-driver, installed
# here if missing) drives the demo server over loopback. If Chromium cannot be installed,
# this says so loudly and exits 0: the rest of CI still runs, and the log shows the gap.
set -euo pipefail
cd "$(dirname "$0")/../.."

loud() { printf '\n%s\n!!! %s\n%s\n\n' "$(printf '!%.0s' {1..78})" "$*" "$(printf '!%.0s' {1..78})"; }

if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  echo "installing chromium and chromium-driver from Debian's packages..."
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } > /dev/null 2>&1; then
    loud "BROWSER TEST NOT RUN: chromium/chromium-driver could not be installed"
    exit 0
  fi
fi
chromium --version

# Both frameworks: the same browser test against the axum and the actix-web build.
cargo build --quiet -p cookie-session-demo --features actix
store_dir=$(mktemp -d)
demo_pid=
demo_out=$(mktemp)
trap 'kill "$demo_pid" 2> /dev/null || true; rm -rf "$demo_out" "$store_dir"' EXIT

# Runs the browser test against the demo with SESSION_STORE=$1, in mode $2, with sessions
# split across up to $3 cookies (default 1), under $FRAMEWORK.
run_against() {
  : > "$demo_out"
  SESSION_STORE="$1" SESSION_COOKIES="${3:-1}" PORT=0 FRAMEWORK="$FRAMEWORK" ./target/debug/cookie-session-demo > "$demo_out" 2> /dev/null &
  demo_pid=$!
  for _ in $(seq 50); do grep -q listening "$demo_out" && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$demo_out")
  [ -n "$url" ] || { echo "the demo did not start (SESSION_STORE=$1)"; exit 1; }
  echo "-- FRAMEWORK=$FRAMEWORK SESSION_STORE=$1 SESSION_COOKIES=${3:-1}"
  python3 tests/browser/browser_test.py "$url" "$2"
  kill "$demo_pid"
  wait "$demo_pid" 2> /dev/null || true
}

for FRAMEWORK in axum actix; do
  rm -f "$store_dir/sessions.db"
  run_against cookie cookie
  run_against cookie chunked 4
  run_against cookie no-cookies
  run_against "sqlite:$store_dir/sessions.db" server-side
  run_against "sqlite:$store_dir/sessions.db" no-cookies
done
