#!/bin/sh
# churn.sh -- builds tests/bench/bench_churn.c against build/libdnsd.a and
# runs it: the control thread's cost per backend state change applied in
# place at 100k services x 10 backends (every backend checked, transfers
# on), 10,000 changes a second, and the query cost of unrelated services
# meanwhile. Writes tests/bench/results/churn-YYYY-MM-DD.txt.
#   make && sh tests/bench/churn.sh [-s services] [-b backends] [-r rate] [-t secs]
# Then 8 alternating 3 s windows without and with churn compare the query
# cost (the reader thread's CPU time per query; the reader on CPU 1,
# the churn on CPU 0).
set -e
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PKGS="yaml-0.1 libcares libsodium liburcu-qsbr libcurl libmicrohttpd jansson openssl"
# shellcheck disable=SC2046
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -I"$ROOT/dnsd" -o "$TMP/bench_churn" \
	"$ROOT/tests/bench/bench_churn.c" "$ROOT/build/libdnsd.a" \
	$(pkg-config --cflags --libs $PKGS) -lpthread -lm
OUT="$ROOT/tests/bench/results/churn-$(date +%F).txt"
{
	echo "# bench_churn $* ($(nproc) cores, $(date -u +%FT%TZ))"
	"$TMP/bench_churn" "$@"
} | tee "$OUT"
