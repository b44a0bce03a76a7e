#!/usr/bin/env bash
# The HTTP-level figure: wrk on loopback against the demo (release build) in each store
# mode, on GET /health (never touches the session), GET /me (reads it) and GET / (writes
# it: a visit counter), with a logged-in session's cookie. Bounded: 1 thread,
# 16 connections, DURATION seconds (default 5) per route. Needs wrk, and DATABASE_URL,
# REDIS_URL and MEMCACHED_URL for those modes (a mode whose variable is unset is skipped).
# Run from the repository root: `bash bench/http.sh`.
set -euo pipefail
duration="${DURATION:-5}"
port=3999
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

command -v wrk > /dev/null || { echo "wrk is not installed (Debian package wrk)"; exit 1; }
cargo build --quiet --release -p cookie-session-demo --features postgres,redis
demo=target/release/cookie-session-demo

modes=(cookie memory "sqlite:$work/sessions.db" "files:$work/files")
[ -n "${MEMCACHED_URL:-}" ] && modes+=("memcached:${MEMCACHED_URL#*://}")
[ -n "${DATABASE_URL:-}" ] && modes+=("$DATABASE_URL")
[ -n "${REDIS_URL:-}" ] && modes+=("$REDIS_URL")

printf '| store | route | req/s | p50 | p99 |\n|---|---|---:|---:|---:|\n'
for mode in "${modes[@]}"; do
  COOKIE_SESSION_KEY=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=') \
    SESSION_STORE="$mode" PORT=$port taskset -c 0 "$demo" > "$work/demo.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  cookie=$(curl -s -i -X POST -d 'user=ada' "http://127.0.0.1:$port/login" \
    | tr -d '\r' | grep -i '^set-cookie:' | head -n1 | sed 's/^[^:]*: //; s/;.*//')
  label=${mode%%:*}
  for route in /health /me / new; do
    # `new`: GET / without a cookie, a new session written by every request. The others
    # carry one logged-in session's cookie: `GET /` is then 16 connections writing the
    # same session at once, the worst case for the stores' compare-and-set.
    if [ "$route" = new ]; then
      out=$(taskset -c 1 wrk -t1 -c16 -d"${duration}s" --latency "http://127.0.0.1:$port/")
    else
      out=$(taskset -c 1 wrk -t1 -c16 -d"${duration}s" --latency -H "Cookie: $cookie" \
        "http://127.0.0.1:$port$route")
    fi
    rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
    p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
    p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
    [ "$route" = new ] && route="/ (new visitor)"
    printf '| %s | GET %s | %s | %s | %s |\n' "$label" "$route" "$rps" "$p50" "$p99"
  done
  kill "$pid"; wait "$pid" 2> /dev/null || true
done
