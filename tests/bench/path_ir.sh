#!/bin/sh
# path_ir.sh -- instructions per request in user space, counted by
# callgrind (exact where CPU time on a shared VM is not):
#   thread:  the whole UDP worker thread (udp_main: receiving and sending
#            batches, the handler, everything but the kernel's own work)
#   handler: the server's handler callback alone (request.c worker_handle;
#            main.c handle in builds before it): parse, TSIG, dispatch,
#            answer, metrics
# perf.py's zone (100 services x 3 backends, weighted, no checks); 20,000
# queries (svcK A and _http._tcp.svcK SRV) at 1,500 q/s.
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
	valgrind --tool=callgrind --toggle-collect='udp_main*' --callgrind-out-file="$TMP/cg" \
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
	callgrind_annotate --inclusive=yes "$TMP/cg" > "$TMP/ann" 2>/dev/null
	total=$(sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' "$TMP/ann" | tr -d ,)
	# The handler by any of its names (an LTO build renames it).
	hand=$(grep -E '[ /]dnsd/(request|main)\.c:(worker_handle|handle)[. ]' "$TMP/ann" |
	       head -1 | sed 's/^ *\([0-9,]*\) .*/\1/' | tr -d ,)
	# + 1: the query that waited for the start.
	echo "$bin: $q queries; per request: thread $((total / (q + 1))), handler $((${hand:-0} / (q + 1))) instructions"
done
