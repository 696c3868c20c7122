#!/usr/bin/env bash
# make bench: start eventflow (serve) on the local Postgres and Redis, with
# a database and a stream of its own, drive it with `eventflow bench`, and
# stop it. Settings come from the environment:
#
#   TRANSPORT    redis (default) or postgres
#   CONNECTIONS  concurrent clients (default 256)
#   DURATION     length of the load (default 20s)
#   BATCH        events per request; 1 posts to /v1/events (default 1)
#   BENCH_ARGS   more flags for eventflow bench (e.g. --output json)
#   REDIS_URL    the Redis to use (default redis://127.0.0.1:6379/0); point it
#                at one with AOF for durable figures, as BENCHMARKS.md does
#
# The database (eventflow_bench) is dropped and the stream deleted first, so
# every run starts empty. The server's log goes to bin/bench-server.log.
set -euo pipefail
cd "$(dirname "$0")/.."

TRANSPORT=${TRANSPORT:-redis}
CONNECTIONS=${CONNECTIONS:-256}
DURATION=${DURATION:-20s}
BATCH=${BATCH:-1}
DB=eventflow_bench
STREAM=eventflow-bench
HTTP_PORT=${HTTP_PORT:-18180}
METRICS_PORT=${METRICS_PORT:-19191}
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}

mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o bin/eventflow ./cmd/eventflow

PGOPTIONS="-c client_min_messages=warning" psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null
redis-cli -u "$REDIS_URL" del "$STREAM" >/dev/null

EVENTFLOW_TRANSPORT=$TRANSPORT EVENTFLOW_STREAM=$STREAM \
	EVENTFLOW_HTTP_ADDR=127.0.0.1:$HTTP_PORT EVENTFLOW_METRICS_ADDR=127.0.0.1:$METRICS_PORT \
	EVENTFLOW_LOG_LEVEL=WARN EVENTFLOW_DB_MAX_CONNS=40 \
	bin/eventflow migrate >/dev/null
EVENTFLOW_TRANSPORT=$TRANSPORT EVENTFLOW_STREAM=$STREAM \
	EVENTFLOW_HTTP_ADDR=127.0.0.1:$HTTP_PORT EVENTFLOW_METRICS_ADDR=127.0.0.1:$METRICS_PORT \
	EVENTFLOW_LOG_LEVEL=WARN EVENTFLOW_DB_MAX_CONNS=40 \
	bin/eventflow serve >bin/bench-server.log 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT

for _ in $(seq 1 50); do
	curl -fs "http://127.0.0.1:$METRICS_PORT/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done

# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags
bin/eventflow bench --url "http://127.0.0.1:$HTTP_PORT" --metrics-url "http://127.0.0.1:$METRICS_PORT/metrics" \
	--database-url "$DATABASE_URL" --redis-url "$REDIS_URL" \
	--connections "$CONNECTIONS" --duration "$DURATION" --batch "$BATCH" ${BENCH_ARGS:-}
