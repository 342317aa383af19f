#!/bin/sh
# health_cpu.sh -- builds tests/bench/bench_health.c and reports the health
# watcher's CPU for 1,000 and 10,000 backends checked every second.
# Usage: tests/bench/health_cpu.sh [seconds (10)] [tcp|http|refused (tcp)]
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECS=${1:-10}
MODE=${2:-tcp}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -I"$ROOT/dnsd" -o "$TMP/bench_health" \
	"$ROOT/tests/bench/bench_health.c" "$ROOT/dnsd/health.c" "$ROOT/dnsd/log.c" \
	$(pkg-config --cflags --libs libcurl) -lpthread
for n in 1000 10000; do
	"$TMP/bench_health" -n "$n" -t "$SECS" -m "$MODE"
done
