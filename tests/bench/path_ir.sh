#!/bin/sh
# path_ir.sh -- instructions per request through the server's handler
# callback (request.c worker_handle; main.c handle in builds before it):
# the whole request path (parse, TSIG, dispatch, answer, metrics), counted
# by callgrind: exact where CPU time on a shared VM
# is not. perf.py's zone (100 services x 3 backends, weighted, no
# checks); 20,000 queries (svcK A and _http._tcp.svcK SRV) at 1,500 q/s.
#   sh tests/bench/path_ir.sh [DNSD ...]    (default: build/dnsd)
# Compare two builds: sh tests/bench/path_ir.sh /old/build/dnsd build/dnsd
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$ROOT/tests/bench" && /usr/bin/python3 -c "
import perf
perf.write_dnsd_yaml('$TMP/zone.yaml', perf.zone_data(100, 3), 8080, '{type: none}')
perf.write_queries('$TMP/queries', 100, 1000)")
[ $# -gt 0 ] || set -- "$ROOT/build/dnsd"
port=15390
for bin in "$@"; do
	port=$((port + 1))
	valgrind --tool=callgrind --toggle-collect=handle --toggle-collect=worker_handle --toggle-collect="worker_handle.lto_priv.*" \
		--callgrind-out-file="$TMP/cg" \
		"$bin" -c "$TMP/zone.yaml" -l 127.0.0.1:$port --workers 1 > "$TMP/log" 2>&1 &
	pid=$!
	i=0
	until dig +short +time=1 +tries=1 @127.0.0.1 -p $port svc0.mesh A > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || { echo "$bin did not start:"; cat "$TMP/log"; kill $pid; exit 1; }
		sleep 1
	done
	dnsperf -s 127.0.0.1 -p $port -d "$TMP/queries" -n 100 -Q 1500 > "$TMP/perf" 2>&1
	kill -TERM $pid
	wait $pid || true
	q=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$TMP/perf")
	ir=$(callgrind_annotate "$TMP/cg" 2>/dev/null |
	     sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
	# + 1: the query that waited for the start.
	echo "$bin: $q queries, $ir instructions in the handler, $((ir / (q + 1))) per request"
done
