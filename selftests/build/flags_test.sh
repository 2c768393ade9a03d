#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# flags_test.sh - the build follows its flags: objects built with other
# flags (CFLAGS, EXTRA_CFLAGS, SANITIZE, WERROR, CC, LDFLAGS) are rebuilt,
# and a build with unchanged flags does nothing (Makefile, BUILD_FLAGS).
# Checked here through EXTRA_CFLAGS, WERROR and LDFLAGS, which go the
# same way as the others.
# Kselftest TAP; builds lib/ out of tree at -O0 in a scratch directory.
srctree=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/flags_test.XXXXXX) || exit 1
trap 'rm -rf "$out"' EXIT
n=0 failed=0

echo "TAP version 13"
echo "1..6"

# Nothing of the outer make may leak in: it exports its command line
# (make check WERROR=1 O=build/asan SANITIZE=...) to the environment.
build() {
	env -i PATH="$PATH" CC="${CC:-cc}" \
		make --no-print-directory -C "$srctree" O="$out" CFLAGS=-O0 "$@" lib 2>&1
}

result() { # name, condition status, diagnostics
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n $1"
	else
		failed=$((failed + 1))
		printf '%s\n' "$3" | sed 's/^/# /'
		echo "not ok $n $1"
	fi
}

objects=$(ls "$srctree"/lib/*.c | wc -l)
compiled() { printf '%s\n' "$1" | grep -c '^  CC      lib/.*\.o$'; }

log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_A)
first=$(compiled "$log")
log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_A)
[ "$(compiled "$log")" = 0 ] && ! printf '%s\n' "$log" | grep -q '^  \(LD\|AR\) '
result same_flags_build_nothing $? "first build compiled $first objects; the second printed:
$log"

log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_B)
[ "$(compiled "$log")" = "$first" ] && [ "$first" -ge "$objects" ]
result other_extra_cflags_rebuild_every_object $? "$objects sources, $first objects at first; now:
$log"

grep -q -- '-DFLAGS_TEST_B' "$out/.build-flags"
result the_flags_file_names_the_new_flags $? "$(cat "$out/.build-flags")"

log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_B WERROR=1)
[ "$(compiled "$log")" = "$first" ] && printf '%s\n' "$log" | grep -q '^  LD      lib/libbring.so'
result werror_rebuilds_and_relinks $? "$log"

log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_B WERROR=1 LDFLAGS=-Wl,-O1)
printf '%s\n' "$log" | grep -q '^  LD      lib/libbring.so'
result other_ldflags_relink $? "$log"

# One invocation that cleans and builds: "make clean lib" (the flags
# file outlives clean, and nothing needs it rebuilt).
log=$(build EXTRA_CFLAGS=-DFLAGS_TEST_B WERROR=1 LDFLAGS=-Wl,-O1 clean)
[ "$(compiled "$log")" = "$first" ]
result clean_then_build_in_one_make $? "$log"

echo "# Totals: pass:$((n - failed)) fail:$failed xfail:0 xpass:0 skip:0 error:0"
[ "$failed" = 0 ]
