#!/usr/bin/env bash
# The HTTP-level comparison (issue 16): for each implementation and payload, one server on
# core 0 (single-threaded runtime; one actix worker) and wrk on core 1, over loopback:
# 1 thread, 16 connections, DURATION seconds (default 5) per route, `GET /me` (reads one
# key) and `POST /note` (writes one). ROUNDS (default 3) rounds, each running every
# implementation once in turn, so that a drift of the machine hits all of them alike.
# Prints every measurement, then a Markdown table: per implementation and route the median
# req/s over the rounds, p50 and p99 of the median round, the server time per request over
# the bare handler's (1/req/s difference within each round: the server is one busy core;
# median), and req/s relative to tower-sessions within each round (median, and the lowest
# and highest round); and the server's own CPU time per request from its clock ticks, user
# space (where a session layer runs) and kernel (the sockets: most of it, and the noisiest
# part on a shared virtual machine), medians. Then, for this crate's actix-web middleware, a
# second table next to actix-session (ours-actix-signed : actix-signed, ours-actix-encrypted
# : actix-private, ours-actix-redis : actix-redis) and for our axum layer on Redis next to
# tower-sessions' Redis store (ours-redis : tower-sessions-redis, ours-redis-cluster :
# tower-sessions-redis-cluster), ratios taken within each round. The Redis rows read
# REDIS_URL (default redis://127.0.0.1:6379/), the cluster rows REDIS_CLUSTER_URL (default
# redis://127.0.0.1:7000, the cluster tests/services/redis-cluster.sh starts). SESSIONS=N (default 1) spreads the
# requests over N visitors' sessions (each request the next cookie, in turn) instead of one
# visitor's 16 parallel requests. Run from anywhere: `bash bench/http-peers/run.sh`; needs wrk
# (Debian: wrk) and python3.
set -euo pipefail
cd "$(dirname "$0")"
duration="${DURATION:-5}"
rounds="${ROUNDS:-3}"
sessions="${SESSIONS:-1}"
impls=(${IMPLS:-bare ours-signed ours-encrypted ours-memory ours-sqlite tower-sessions actix-signed actix-private axum-extra-signed axum-extra-private ours-actix-signed ours-actix-encrypted ours-actix-redis actix-redis})
payloads=(${PAYLOADS:-small medium})
port=3998
hz=$(getconf CLK_TCK)
command -v wrk > /dev/null || { echo "wrk is not installed (Debian package wrk)"; exit 1; }
cargo build --quiet --release
server=target/release/cookie-session-bench-http
post=$(mktemp --suffix=.lua)
results=$(mktemp --suffix=.tsv)
rotate=$(mktemp)
pid=
trap 'rm -f "$post" "$results" "$rotate" "$rotate.lua"; [ -n "$pid" ] && kill "$pid" 2> /dev/null || true' EXIT
echo 'wrk.method = "POST"' > "$post"

for round in $(seq "$rounds"); do
  for size in "${payloads[@]}"; do
    for imp in "${impls[@]}"; do
      if curl -s -o /dev/null "http://127.0.0.1:$port/"; then
        echo "port $port is taken: stop what listens there first"; exit 1
      fi
      taskset -c 0 "$server" "$imp" "$size" "$port" > /dev/null 2>&1 &
      pid=$!
      for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/login" && break; sleep 0.05; done
      # Every cookie the login sets, as a browser would send them back; with SESSIONS=N,
      # N visitors' sessions, and wrk sends each request with the next one in turn.
      login() {
        curl -s -i "http://127.0.0.1:$port/login" | tr -d '\r' \
          | { grep -i '^set-cookie:' || true; } | sed 's/^[^:]*: //; s/;.*//' | paste -sd ';' | sed 's/;/; /g'
      }
      cookie=$(login)
      if [ "$sessions" -gt 1 ]; then
        { printf 'cookies = {'
          for _ in $(seq "$sessions"); do printf '"%s",' "$(login)"; done
          printf '}\ni = 0\nrequest = function()\n  i = i %% #cookies + 1\n'
          printf '  return wrk.format(wrk.method, nil, {Cookie = cookies[i]})\nend\n'
        } > "$rotate"
      fi
      for route in /me /note; do
        args=(-t1 -c16 -d"${duration}s" --latency)
        if [ "$sessions" -gt 1 ]; then
          # The method goes in through the script: one script, both routes.
          sed "1i wrk.method = \"$([ "$route" = /note ] && echo POST || echo GET)\"" "$rotate" > "$rotate.lua"
          args+=(-s "$rotate.lua")
        else
          [ -n "$cookie" ] && args+=(-H "Cookie: $cookie")
          [ "$route" = /note ] && args+=(-s "$post")
        fi
        read -r user0 system0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        out=$(taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:$port$route")
        read -r user1 system1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
        requests=$(awk '/requests in/ {print $1}' <<< "$out")
        # The server's CPU time per request, user space and kernel, from its clock ticks.
        user=$(awk -v a="$user0" -v b="$user1" -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
        system=$(awk -v a="$system0" -v b="$system1" -v n="$requests" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
        rps=$(awk '/Requests\/sec/ {print $2}' <<< "$out")
        p50=$(awk '$1 == "50%" {print $2}' <<< "$out")
        p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
        # Failed requests are counted by wrk as requests: shown, never hidden in the rate.
        errors=$(awk '/Non-2xx/ {print $NF}' <<< "$out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$size" "$imp" \
          "$([ "$route" = /note ] && echo POST || echo GET) $route" "$rps" "$p50" "$p99" "${errors:-0}" \
          "$user" "$system" \
          | tee -a "$results"
      done
      kill "$pid" 2> /dev/null || true
      wait "$pid" 2> /dev/null || true
    done
  done
done

python3 - "$results" <<'EOF'
import collections, statistics, sys

rows = collections.defaultdict(dict)  # (size, imp, route) -> round -> (rps, p50, p99, errors)
order = []
for line in open(sys.argv[1]):
    rnd, size, imp, route, rps, p50, p99, errors, user, system = line.rstrip("\n").split("\t")
    key = (size, imp, route)
    if key not in order:
        order.append(key)
    rows[key][rnd] = (float(rps), p50, p99, int(errors), float(user), float(system))

def per_round(key, f):
    """f(this round's row, the same round's row of another implementation) for every round."""
    return lambda other: [f(rows[key][r], rows[other][r]) for r in rows[key] if r in rows[other]]

print("| payload | implementation | route | req/s (median) | p50 / p99 | µs over bare | vs tower-sessions "
      "| server user / system µs per request | user µs over bare |")
print("|---|---|---|---:|---|---:|---|---|---:|")
for key in order:
    size, imp, route = key
    rounds = rows[key]
    by_rps = sorted(rounds.values(), key=lambda r: r[0])
    median = by_rps[len(by_rps) // 2]
    errors = sum(r[3] for r in rounds.values())
    bare = per_round(key, lambda a, b: 1e6 / a[0] - 1e6 / b[0])((size, "bare", route))
    tower = per_round(key, lambda a, b: a[0] / b[0])((size, "tower-sessions", route))
    over = f"{statistics.median(bare):.2f}" if bare else "-"
    user_over = per_round(key, lambda a, b: a[4] - b[4])((size, "bare", route))
    user_over = f"{statistics.median(user_over):.2f}" if user_over else "-"
    cpu = (f"{statistics.median(r[4] for r in rounds.values()):.2f} / "
           f"{statistics.median(r[5] for r in rounds.values()):.2f}")
    ratio = (f"{statistics.median(tower):.2f}x ({min(tower):.2f}-{max(tower):.2f})"
             if tower else "-")
    failed = f" ({errors} failed)" if errors else ""
    print(f"| {size} | {imp} | {route} | {statistics.median(r[0] for r in rounds.values()):,.0f}"
          f"{failed} | {median[1]} / {median[2]} | {over} | {ratio} | {cpu} | {user_over} |")
peers = {"ours-actix-signed": "actix-signed", "ours-actix-encrypted": "actix-private",
         "ours-actix-redis": "actix-redis", "ours-redis": "tower-sessions-redis",
         "ours-redis-cluster": "tower-sessions-redis-cluster"}
pairs = [(key, (key[0], peers[key[1]], key[2])) for key in order
         if key[1] in peers and (key[0], peers[key[1]], key[2]) in rows]
if pairs:
    print()
    print("| payload | route | ours | peer | ours req/s | theirs req/s "
          "| ours / theirs (median, lowest-highest round) |")
    print("|---|---|---|---|---:|---:|---|")
    for ours, theirs in pairs:
        ratios = per_round(ours, lambda a, b: a[0] / b[0])(theirs)
        med = lambda k: statistics.median(r[0] for r in rows[k].values())
        print(f"| {ours[0]} | {ours[2]} | {ours[1]} | {theirs[1]} | {med(ours):,.0f} | {med(theirs):,.0f} "
              f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) |")
EOF
