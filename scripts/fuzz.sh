#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Build the bring_open() fuzz target with clang (libFuzzer + ASan, from
# lib/'s sources) into build/fuzz/ and run it for half of SECONDS
# (default 60) on a copy of fuzz/corpus/ plus the raw base files the
# target makes; then the bring: hop's frame parser (hop_fuzz, seeds in
# fuzz/hop_corpus/) and the syslog framing (syslog_fuzz, seeds in
# fuzz/syslog_corpus/) for a quarter each. Fails
# on any crash, leak, timeout or broken invariant; the input that did it
# is left in build/fuzz/ (crash-*, leak-*, timeout-*), and
# "build/fuzz/open_fuzz FILE" replays it.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_SANITIZE=address,undefined scripts/fuzz.sh 300
#
# Needs clang and libFuzzer: clang-14 and libclang-rt-14-dev on Debian
# (scripts/install-deps.sh installs them).
set -eu
cd "$(dirname "$0")/.."

secs=${1:-60}
out=build/fuzz

make --no-print-directory -f fuzz/Build O="$out" \
	${FUZZ_SANITIZE:+FUZZ_SANITIZE="$FUZZ_SANITIZE"}

rm -rf "$out/corpus"
mkdir -p "$out/corpus"
cp fuzz/corpus/* "$out/corpus/"
# Whole valid files of the current layout, as raw-input seeds.
BRING_FUZZ_DUMP_BASES="$out/corpus" "$out/open_fuzz" -runs=0 >/dev/null 2>&1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
open_secs=$(( (secs + 1) / 2 ))
hop_secs=$(( (secs - open_secs + 1) / 2 ))
syslog_secs=$(( secs - open_secs - hop_secs ))
[ "$hop_secs" -ge 1 ] || hop_secs=1
[ "$syslog_secs" -ge 1 ] || syslog_secs=1
echo "fuzz: open_fuzz for ${open_secs} s on $(ls "$out/corpus" | wc -l) seeds"
"$out/open_fuzz" -max_total_time="$open_secs" -max_len=40000 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$out/" "$out/corpus"

# run_target NAME SECS: fuzz/NAME_corpus/ copied, then NAME_fuzz on it.
run_target() {
	rm -rf "$out/$1_corpus"
	mkdir -p "$out/$1_corpus"
	cp fuzz/"$1"_corpus/* "$out/$1_corpus/"
	echo "fuzz: $1_fuzz for $2 s on $(ls "$out/$1_corpus" | wc -l) seeds"
	"$out/$1_fuzz" -max_total_time="$2" -max_len=8192 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/$1-" "$out/$1_corpus"
}
run_target hop "$hop_secs"
run_target syslog "$syslog_secs"
echo "fuzz: no crash in ${secs} s"
