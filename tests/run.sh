#!/bin/sh
# Runs every test against the binaries in $BUILD: unit (TAP), integration
# (pytest + dnspython, dig, kdig, drill, meshdig), func cases, fuzz corpus
# replay. Prints one summary line "N passed, N failed" at the end.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export DNSD="$ROOT/$BUILD/dnsd" MESHDIG="$ROOT/$BUILD/meshdig"
# Only read by TSan builds: see tests/tsan.supp.
export TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
pass=0
fail=0
failed_names=""

note() { printf '%s\n' "$*"; }
record() { # name status
	if [ "$2" -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); failed_names="$failed_names $1"; fi
}

note "== unit tests ($BUILD)"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1); st=$?
	if [ $st -ne 0 ]; then printf '%s\n' "$out"; note "FAIL $(basename "$t")"; else note "ok   $(basename "$t") ($(printf '%s\n' "$out" | grep -c '^ok'))"; fi
	record "$(basename "$t")" $st
done

note "== fuzz corpus replay"
for r in "$BUILD"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	name=${r##*/replay_}
	"$r" fuzz/corpus/"$name"; st=$?
	record "replay_$name" $st
done

if [ -x tests/func/run.sh ]; then
	note "== func cases"
	tests/func/run.sh; st=$?
	record func $st
fi

note "== integration tests (pytest)"
PYTEST=/usr/bin/pytest
if [ -x $PYTEST ]; then
	$PYTEST -q -p no:cacheprovider tests/integration; st=$?
	[ $st -eq 5 ] && st=1   # no tests collected is a failure, not a pass
	record pytest $st
else
	note "missing /usr/bin/pytest (run: make deps)"; record pytest 1
fi

[ -n "$failed_names" ] && note "failed:$failed_names"
note "tests: $pass passed, $fail failed"
[ $fail -eq 0 ]
