#!/bin/sh
# path_ir.sh -- instructions per request in user space, counted by
# callgrind (exact where CPU time on a shared VM is not). perf.py's zone
# (100 services x 3 backends, weighted, no checks); 20,000 queries (svcK A
# and _http._tcp.svcK SRV) at 1,500 q/s. Per dnsd binary:
#   thread:  the whole UDP worker thread (udp_main: receiving and sending
#            batches, the handler, everything but the kernel's own work)
#   handler: the server's handler callback alone (request.c worker_handle;
#            main.c handle in builds before it): parse, TSIG, dispatch,
#            answer, metrics
#   process: every thread of the process, a run with the queries minus a
#            run without them, over 20,000 (what gdnsd gets too)
# and, when gdnsd is installed, its process figure on the same zone
# (udp_threads 1), the same way.
#   sh tests/bench/path_ir.sh [DNSD ...]    (default: build/dnsd)
# Compare two builds: sh tests/bench/path_ir.sh /old/build/dnsd build/dnsd
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
pid=
trap '[ -z "$pid" ] || kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT
(cd "$ROOT/tests/bench" && /usr/bin/python3 -c "
import perf
data = perf.zone_data(100, 3)
perf.write_dnsd_yaml('$TMP/zone.yaml', data, 8080, '{type: none}')
perf.write_zonefile('$TMP/mesh.zone', data, 8080)
perf.write_queries('$TMP/queries', 100, 1000)")
[ $# -gt 0 ] || set -- "$ROOT/build/dnsd"
port=15390
N=20000

# run NQUERIES OUTFILE VALGRIND-ARGS... -- SERVER ARGV...: the server under
# callgrind, NQUERIES queries once it answers; sets $q (queries completed).
run() {
	nq=$1 out=$2
	shift 2
	port=$((port + 1))
	valgrind --tool=callgrind --callgrind-out-file="$out" "$@" > "$TMP/log" 2>&1 &
	pid=$!
	i=0
	until dig +short +time=1 +tries=1 @127.0.0.1 -p $port svc0.mesh A > /dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 60 ] || { echo "$* did not start:"; cat "$TMP/log"; exit 1; }
		sleep 1
	done
	q=0
	if [ "$nq" -gt 0 ]; then
		lines=$(wc -l < "$TMP/queries")
		dnsperf -s 127.0.0.1 -p $port -d "$TMP/queries" -n $((nq / lines)) -Q 1500 \
			> "$TMP/perf" 2>&1
		q=$(sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$TMP/perf")
	fi
	kill -TERM $pid
	{ wait $pid; } 2>/dev/null || true
	pid=
}
total() {
	callgrind_annotate "$1" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,
}

for bin in "$@"; do
	run $N "$TMP/cg" --toggle-collect='udp_main*' \
		"$bin" -c "$TMP/zone.yaml" -l 127.0.0.1:$((port + 1)) --workers 1
	callgrind_annotate --inclusive=yes "$TMP/cg" > "$TMP/ann" 2>/dev/null
	thread=$(total "$TMP/cg")
	# The handler by any of its names (an LTO build renames it).
	hand=$(grep -E '[ /]dnsd/(request|main)\.c:(worker_handle|handle)[. ]' "$TMP/ann" |
	       head -1 | sed 's/^ *\([0-9,]*\) .*/\1/' | tr -d ,)
	qt=$q
	run $N "$TMP/p1" "$bin" -c "$TMP/zone.yaml" -l 127.0.0.1:$((port + 1)) --workers 1
	q1=$q
	run 0 "$TMP/p0" "$bin" -c "$TMP/zone.yaml" -l 127.0.0.1:$((port + 1)) --workers 1
	# + 1: the query that waited for the start.
	echo "$bin: $qt queries; per request: thread $((thread / (qt + 1))), handler" \
	     "$((${hand:-0} / (qt + 1))), process $((($(total "$TMP/p1") - $(total "$TMP/p0")) / q1))" \
	     "instructions"
done

if [ -x /usr/sbin/gdnsd ]; then
	mkdir -p "$TMP/gd/zones" "$TMP/gd/run" "$TMP/gd/state"
	cp "$TMP/mesh.zone" "$TMP/gd/zones/mesh"
	gconf() {
		printf 'options => {\n listen => [ 127.0.0.1 ]\n dns_port => %d\n udp_threads => 1\n' "$1"
		printf ' tcp_threads => 1\n run_dir => %s\n state_dir => %s\n}\n' "$TMP/gd/run" "$TMP/gd/state"
	}
	gconf $((port + 1)) > "$TMP/gd/config"
	run $N "$TMP/g1" /usr/sbin/gdnsd -c "$TMP/gd" -f start
	q1=$q
	gconf $((port + 1)) > "$TMP/gd/config"
	run 0 "$TMP/g0" /usr/sbin/gdnsd -c "$TMP/gd" -f start
	echo "gdnsd $(dpkg-query -W -f '${Version}' gdnsd 2>/dev/null): $q1 queries; per request:" \
	     "process $((($(total "$TMP/g1") - $(total "$TMP/g0")) / q1)) instructions"
fi
