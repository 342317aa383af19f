#!/bin/sh
# health_cpu.sh -- builds tests/bench/bench_health.c against build/libdnsd.a
# and runs it once: CPU per health check, dnsd's watcher or the floor.
# Usage: tests/bench/health_cpu.sh [bench_health options]
#   e.g. tests/bench/health_cpu.sh -n 10000 -m tcp -F
# With no options: tcp, 1,000 and 10,000 backends at 1 s, dnsd then the floor.
# The table in README comes from tests/bench/checks.py (every check type).
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BENCH_HEALTH:-$ROOT/build/bench_health}
make -C "$ROOT" -s build/libdnsd.a
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -I"$ROOT/dnsd" -o "$BIN" \
	"$ROOT/tests/bench/bench_health.c" "$ROOT/build/libdnsd.a" \
	$(pkg-config --libs yaml-0.1 libcares libsodium liburcu-qsbr libcurl libmicrohttpd jansson \
	  openssl) -lpthread -lm
if [ $# -gt 0 ]; then
	exec "$BIN" "$@"
fi
for n in 1000 10000; do
	"$BIN" -n "$n" -t 10 -m tcp
	"$BIN" -n "$n" -t 10 -m tcp -F
done
