#!/bin/sh
# Runs every test against the binaries in $BUILD: unit (TAP), fuzz corpus
# replay, func cases, integration (pytest + dnspython, dig, kdig, drill,
# meshdig). The last line counts checks, not programs: each TAP check, each
# corpus input replayed and each pytest case, as "tests: N passed, N failed"
# (and skipped, if any), with thousands separated by commas.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export DNSD="$ROOT/$BUILD/dnsd" MESHDIG="$ROOT/$BUILD/meshdig"
# Only read by TSan builds: see tests/tsan.supp.
export TSAN_OPTIONS="suppressions=$ROOT/tests/tsan.supp${TSAN_OPTIONS:+ $TSAN_OPTIONS}"
pass=0
fail=0
skip=0
failed_names=""
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

note() { printf '%s\n' "$*"; }
# name status passed failed [skipped]: a program's checks. A program that
# fails without a failed check of its own (a crash, a bad exit) counts one.
record() {
	p=$3 f=$4
	[ "$2" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${5:-0}))
	[ "$2" -eq 0 ] && [ "$f" -eq 0 ] || failed_names="$failed_names $1"
}
# 12345678 -> 12,345,678
commas() { printf '%s\n' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/; ta'; }

note "== unit tests ($BUILD)"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out=$("$t" 2>&1); st=$?
	okc=$(printf '%s\n' "$out" | grep -c '^ok ')
	notok=$(printf '%s\n' "$out" | grep -c '^not ok ')
	if [ $st -ne 0 ] || [ "$notok" -ne 0 ]; then
		printf '%s\n' "$out"; note "FAIL $name ($okc passed, $notok failed, exit $st)"
		[ $st -ne 0 ] || st=1
	else
		note "ok   $name ($okc checks)"
	fi
	record "$name" $st "$okc" "$notok"
done

note "== fuzz corpus replay"
for r in "$BUILD"/fuzz/replay_*; do
	[ -x "$r" ] || continue
	name=${r##*/replay_}
	# A build dir may still hold the replay of a target since removed,
	# with its corpus.
	[ -d fuzz/corpus/"$name" ] || continue
	out=$("$r" fuzz/corpus/"$name" 2>&1); st=$?
	n=$(printf '%s\n' "$out" | sed -n 's/^replay: \([0-9]*\) inputs$/\1/p')
	if [ $st -eq 0 ] && [ -n "$n" ]; then
		note "ok   fuzz_$name: $n inputs from fuzz/corpus/$name"
		record "replay_$name" 0 "$n" 0
	else
		printf '%s\n' "$out"; note "FAIL fuzz_$name: replay of fuzz/corpus/$name (exit $st)"
		record "replay_$name" 1 0 1
	fi
done

if [ -x tests/func/run.sh ]; then
	note "== func cases"
	tests/func/run.sh; st=$?
	record func $st $((st == 0)) 0
fi

note "== integration tests (pytest)"
PYTEST=/usr/bin/pytest
if [ -x $PYTEST ]; then
	# PYTEST_PATHS: a subset, e.g. tests/integration/test_deploy.py
	# shellcheck disable=SC2086
	{ $PYTEST -q -p no:cacheprovider ${PYTEST_PATHS:-tests/integration}; echo $? > "$tmp/rc"; } 2>&1 | tee "$tmp/out"
	st=$(cat "$tmp/rc")
	[ "$st" -eq 5 ] && st=1   # no tests collected is a failure, not a pass
	# pytest's last line: "3 failed, 120 passed, 2 skipped, 1 error in 9.1s"
	last=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|errors?|xfailed|xpassed|deselected)' \
	       "$tmp/out" | tail -n 1)
	count() { printf '%s\n' "$last" | sed -n "s/.*[^0-9]\\([0-9][0-9]*\\) $1.*/\\1/p; s/^\\([0-9][0-9]*\\) $1.*/\\1/p" | head -n 1; }
	pp=$(count passed); pf=$(count failed); pe=$(count error); ps=$(count skipped)
	record pytest "$st" "${pp:-0}" $((${pf:-0} + ${pe:-0})) "${ps:-0}"
else
	note "missing /usr/bin/pytest (run: make test-deps)"; record pytest 1 0 1
fi

[ -n "$failed_names" ] && note "failed:$failed_names"
summary="tests: $(commas $pass) passed, $(commas $fail) failed"
[ $skip -eq 0 ] || summary="$summary, $(commas $skip) skipped"
note "$summary"
[ $fail -eq 0 ] && [ -z "$failed_names" ]
