#!/usr/bin/env bash
# Instructions per request of each server over real HTTP, which a busy machine does not
# change (issue 16): the server runs under `valgrind --tool=callgrind`, wrk loads it for
# 4 s to warm it up, the counters are zeroed, wrk loads it for another DURATION seconds
# (default 4), the counters are dumped and divided by the requests wrk completed. User
# space only: the kernel's share (the socket calls) is not counted. valgrind hides SHA-NI
# from the CPU feature check, so HMAC-SHA256 runs in software here: rows that sign
# (ours-signed, ours-memory, actix-*, axum-extra-signed) are inflated by it, ours-encrypted
# and tower-sessions are not. `bash bench/http-peers/instructions.sh`; needs valgrind and
# wrk. IMPLS and PAYLOADS choose the rows, ROUTE the route (default /me).
set -euo pipefail
cd "$(dirname "$0")"
duration="${DURATION:-4}"
route="${ROUTE:-/me}"
impls=(${IMPLS:-bare ours-signed ours-encrypted ours-memory tower-sessions actix-signed actix-private axum-extra-signed axum-extra-private})
payloads=(${PAYLOADS:-small medium})
port=3997
command -v valgrind > /dev/null || { echo "valgrind is not installed"; exit 1; }
command -v wrk > /dev/null || { echo "wrk is not installed (Debian package wrk)"; exit 1; }
cargo build --quiet --release
server=target/release/cookie-session-bench-http
out=$(mktemp -d)
post=$(mktemp --suffix=.lua)
pid=
trap 'rm -rf "$out" "$post"; [ -n "$pid" ] && kill "$pid" 2> /dev/null || true' EXIT
echo 'wrk.method = "POST"' > "$post"

printf '| payload | implementation | route | requests | instructions per request | over bare |\n|---|---|---|---:|---:|---:|\n'
for size in "${payloads[@]}"; do
  bare=
  for imp in "${impls[@]}"; do
    valgrind --tool=callgrind --callgrind-out-file="$out/$imp.$size" \
      "$server" "$imp" "$size" "$port" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 300); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.1; done
    cookie=$(curl -s -i "http://127.0.0.1:$port/login" | tr -d '\r' \
      | { grep -i '^set-cookie:' || true; } | sed 's/^[^:]*: //; s/;.*//' | paste -sd ';' | sed 's/;/; /g')
    args=(-t1 -c16)
    [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
    [ "$route" = /note ] && args+=(-s "$post")
    wrk "${args[@]}" -d4s "http://127.0.0.1:$port$route" > /dev/null
    callgrind_control -z "$pid" > /dev/null 2>&1
    requests=$(wrk "${args[@]}" -d"${duration}s" "http://127.0.0.1:$port$route" | awk '/requests in/ {print $1}')
    callgrind_control -d "$pid" > /dev/null 2>&1
    kill "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
    pid=
    total=$(awk '/^(summary|totals):/ {print $2; exit}' "$out/$imp.$size.1")
    per=$((total / requests))
    [ "$imp" = bare ] && bare=$per
    printf '| %s | %s | %s | %s | %s | %s |\n' "$size" "$imp" "$route" "$requests" "$per" \
      "$([ -n "$bare" ] && echo $((per - bare)) || echo -)"
  done
done
