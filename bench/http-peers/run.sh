#!/usr/bin/env bash
# The HTTP-level comparison (issue 16): for each implementation and payload, one server on
# core 0 (single-threaded runtime; one actix worker) and wrk on core 1, over loopback:
# 1 thread, 16 connections, DURATION seconds (default 5) per route, `GET /me` (reads one
# key) and `POST /note` (writes one). Prints a Markdown table with req/s, p50, p99, and the
# server time per request over the bare handler's (1/req/s difference: the server is one
# busy core). Run from anywhere: `bash bench/http-peers/run.sh`; needs wrk (Debian: wrk).
set -euo pipefail
cd "$(dirname "$0")"
duration="${DURATION:-5}"
impls=(${IMPLS:-bare ours-signed ours-encrypted ours-memory ours-sqlite tower-sessions actix-signed actix-private axum-extra-signed axum-extra-private})
payloads=(${PAYLOADS:-small medium})
port=3998
command -v wrk > /dev/null || { echo "wrk is not installed (Debian package wrk)"; exit 1; }
cargo build --quiet --release
server=target/release/cookie-session-bench-http
post=$(mktemp --suffix=.lua)
pid=
trap 'rm -f "$post"; [ -n "$pid" ] && kill "$pid" 2> /dev/null || true' EXIT
echo 'wrk.method = "POST"' > "$post"

declare -A bare_rps
printf '| payload | implementation | route | req/s | p50 | p99 | µs over bare |\n|---|---|---|---:|---:|---:|---:|\n'
for size in "${payloads[@]}"; do
  for imp in "${impls[@]}"; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
      echo "port $port is taken: stop what listens there first"; exit 1
    fi
    taskset -c 0 "$server" "$imp" "$size" "$port" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.05; done
    # Every cookie the login sets, as a browser would send them back.
    cookie=$(curl -s -i "http://127.0.0.1:$port/login" | tr -d '\r' \
      | { grep -i '^set-cookie:' || true; } | sed 's/^[^:]*: //; s/;.*//' | paste -sd ';' | sed 's/;/; /g')
    for route in /me /note; do
      args=(-t1 -c16 -d"${duration}s" --latency)
      [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
      [ "$route" = /note ] && args+=(-s "$post")
      out=$(taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$route")
      rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
      p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
      p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
      # Failed requests are counted by wrk as requests: shown, never hidden in the rate.
      errors=$(awk '/Non-2xx/ {print $NF}' <<< "$out")
      [ -n "$errors" ] && rps="$rps ($errors failed)"
      key="$size$route"
      [ "$imp" = bare ] && bare_rps[$key]=$rps
      over=$(awk -v r="${rps%% *}" -v b="${bare_rps[$key]:-0}" 'BEGIN { if (b > 0) printf "%.2f", 1e6 / r - 1e6 / b; else print "-" }')
      printf '| %s | %s | %s %s | %s | %s | %s | %s |\n' "$size" "$imp" \
        "$([ "$route" = /note ] && echo POST || echo GET)" "$route" "$rps" "$p50" "$p99" "$over"
    done
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
  done
done
