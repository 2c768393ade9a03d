#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: ship a generated log file with one bringcat over TCP loopback
# to a second bringcat that writes a file, check the copy byte for byte,
# and print the throughput and how long each side's writers and readers
# spent blocked (bringcat --stats).
#
#   scripts/demo.sh [MiB]        (default 64; BRING_OUT: the build dir)
set -euo pipefail
OUT=${BRING_OUT:-$(cd "$(dirname "$0")/.." && pwd)}
BC=$OUT/io/bringcat
MIB=${1:-64}
T=$(mktemp -d /tmp/bring-demo.XXXXXX)
RX=
cleanup() {
	[ -n "$RX" ] && kill "$RX" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

[ -x "$BC" ] || { echo "demo: $BC is missing (make first)" >&2; exit 1; }

# Log lines of varied length, like a web server's: 60 to 250 bytes.
awk -v bytes=$((MIB << 20)) 'BEGIN {
	srand(7);
	pad = sprintf("%250s", ""); gsub(/ /, "x", pad);
	for (n = 0; total < bytes; n++) {
		line = sprintf("2026-11-27T08:00:%02d.%06dZ host%d app[%d]: request %d status=%d %s",
			       n % 60, n % 1000000, n % 7, 1000 + n % 13, n,
			       200 + (n % 5) * 100, substr(pad, 1, int(rand() * 160)));
		print line;
		total += length(line) + 1;
	}
}' > "$T/in"
SIZE=$(stat -c %s "$T/in")
LINES=$(wc -l < "$T/in")
printf 'demo: %d lines, %.1f MiB of logs in %s\n' "$LINES" \
	"$(echo "$SIZE / 1048576" | bc -l)" "$T/in"

# Receiver: a TCP listener on an ephemeral port, writing a file.
"$BC" --stats -i tcp-listen:127.0.0.1:0 -o "file:$T/out" 2>"$T/rx.log" &
RX=$!
PORT=
for _ in $(seq 500); do
	PORT=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$T/rx.log")
	[ -n "$PORT" ] && break
	sleep 0.01
done
[ -n "$PORT" ] || { cat "$T/rx.log" >&2; exit 1; }

# Sender: the file into TCP; it exits once every line was sent.
T0=$(date +%s.%N)
"$BC" --stats -i "file:$T/in" -o "tcp:127.0.0.1:$PORT" 2>"$T/tx.log"
while [ "$(stat -c %s "$T/out" 2>/dev/null || echo 0)" -lt "$SIZE" ]; do
	sleep 0.005
done
T1=$(date +%s.%N)
kill -TERM "$RX"
wait "$RX" || true
RX=

if cmp -s "$T/in" "$T/out"; then
	echo "demo: the received file is identical, byte for byte"
else
	echo "demo: FAIL: the received file differs" >&2
	exit 1
fi
printf 'demo: %.1f MB/s, %.2f M lines/s, file -> bringcat -> TCP -> bringcat -> file\n' \
	"$(echo "$SIZE / ($T1 - $T0) / 1000000" | bc -l)" \
	"$(echo "$LINES / ($T1 - $T0) / 1000000" | bc -l)"
# "full waits N (Xs), empty waits N (Ys)": writers blocked on a full
# ring, readers (the sinks) blocked on an empty one.
blocked() {
	grep 'bringcat: done' "$1" |
		sed -n 's/.*full waits \([0-9]*\) (\([0-9.]*s\)), empty waits \([0-9]*\) (\([0-9.]*s\)).*/writers blocked \2 (\1 waits), readers blocked \4 (\3 waits)/p'
}
echo "demo: sender:   $(blocked "$T/tx.log")"
echo "demo: receiver: $(blocked "$T/rx.log")"
echo "sender:   $(grep 'bringcat: done' "$T/tx.log" | sed 's/^bringcat: //')"
echo "receiver: $(grep 'bringcat: done' "$T/rx.log" | sed 's/^bringcat: //')"
