#!/usr/bin/env bash
# The peer benchmarks, one after the other on a quiet machine: ours next to tower-sessions
# on PostgreSQL and Redis; then SQLite: ours (the crate's `server` benchmark, SQLite in a
# file) and tower-sessions' (sqlite-peer/, its own graph: sqlx's SQLite and rusqlite's
# cannot be in one). Needs DATABASE_URL
# and REDIS_URL. Run from the repository root or bench/.
set -euo pipefail
cd "$(dirname "$0")"
: "${DATABASE_URL:?set DATABASE_URL (postgres://...)}"
: "${REDIS_URL:?set REDIS_URL (redis://...)}"
cargo bench --bench stores
(cd .. && cargo bench --bench server --features axum,sqlite -- 'ours-sqlite')
(cd sqlite-peer && cargo bench --bench sqlite)
