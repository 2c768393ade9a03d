#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# run.sh - run the benchmarks: bench/run.sh BENCH_BINARY...
#
# Called by "make bench" from the source tree with BRING_OUT set to the
# build directory. Each benchmark runs with no arguments and prints its
# tables on stdout. Its JSON goes to $BRING_OUT/bench/results/<name>.json:
# run.sh passes that path in BENCH_JSON, and a benchmark that does not
# write it gets a wrapper there instead ({"bench", "exit", "output"}).
#
#   BENCH_QUICK=1   a reduced run (about 15 s for bench/ring/ring_bench)
#
# Exits non-zero only when a benchmark failed (a corrupted or lost message,
# a hang, a crash); missed performance targets are reported, not fatal.

set -u

out=${BRING_OUT:-.}
results="$out/bench/results"

if [ $# -eq 0 ]; then
	echo "usage: $0 BENCH_BINARY..." >&2
	exit 2
fi
mkdir -p "$results" || exit 1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# wrap_output NAME EXIT LOG: a JSON object holding a benchmark's output.
wrap_output()
{
	awk -v name="$1" -v rc="$2" '
	function esc(s,    out, c, i) {
		out = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (c == "\\" || c == "\"")
				out = out "\\" c
			else if (c == "\t")
				out = out "\\t"
			else if (c < " ")
				out = out " "
			else
				out = out c
		}
		return out
	}
	BEGIN { printf "{\n  \"bench\": \"%s\",\n  \"exit\": %d,\n  \"output\": [", esc(name), rc }
	{ printf "%s\n    \"%s\"", (NR > 1 ? "," : ""), esc($0) }
	END { print "\n  ]\n}" }' "$3"
}

status=0
for bin in "$@"; do
	name=$(basename "$bin")
	json="$results/$name.json"
	rm -f "$json"
	echo "=== $name${BENCH_QUICK:+ (BENCH_QUICK=$BENCH_QUICK)}"
	start=$(date +%s)
	{ BENCH_JSON="$json" "$bin"; echo $? > "$tmp/rc"; } | tee "$tmp/log"
	rc=$(cat "$tmp/rc")
	[ -s "$json" ] || wrap_output "$name" "$rc" "$tmp/log" > "$json"
	if [ "$rc" -eq 0 ]; then
		echo "=== $name: done in $(($(date +%s) - start)) s, JSON in $json"
	else
		echo "=== $name: FAILED (exit $rc), JSON in $json" >&2
		status=1
	fi
done
exit $status
