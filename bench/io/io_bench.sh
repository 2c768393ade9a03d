#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# bench/io: ship a file of 100-byte lines over TCP loopback and compare
# a bringcat pair (io_uring and --no-uring) with a socat pair and a plain
# cat | socat relay; with STRACE=1 also the system calls per MB of the
# bringcat pair (strace -c -f).
#
#   bench/io/io_bench.sh [MiB]        (default 512)
set -euo pipefail
OUT=${BRING_OUT:-$(cd "$(dirname "$0")/../.." && pwd)}
BC=$OUT/io/bringcat
MIB=${1:-512}
T=$(mktemp -d /tmp/io_bench.XXXXXX)
trap 'rm -rf "$T"' EXIT

# 100-byte lines: 99 characters and a newline.
python3 - "$T/in" "$MIB" <<'PY'
import sys
line = (b"%s" % (b"x" * 80))
n = int(sys.argv[2]) * (1 << 20) // 100
with open(sys.argv[1], "wb") as f:
    buf = []
    for i in range(n):
        buf.append(b"%018d %s\n" % (i, line))
        if len(buf) == 100000:
            f.write(b"".join(buf)); buf = []
    f.write(b"".join(buf))
PY
SIZE=$(stat -c %s "$T/in")

port_of() { # wait for "listening on port N" in $1
	for _ in $(seq 500); do
		p=$(sed -n 's/.*listening on port \([0-9]*\).*/\1/p' "$1")
		[ -n "$p" ] && { echo "$p"; return; }
		sleep 0.01
	done
	return 1
}

wait_size() { # file size
	while [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -lt "$2" ]; do sleep 0.01; done
}

run_bringcat() { # name, extra flags
	rm -f "$T/out"
	$BC $2 -q -i tcp-listen:127.0.0.1:0 -o "file:$T/out" 2>"$T/rx" &
	local rx=$! port t0 t1
	port=$(port_of "$T/rx")
	t0=$(date +%s.%N)
	${STRACE_CMD:-} $BC $2 -q -i "file:$T/in" -o "tcp:127.0.0.1:$port"
	wait_size "$T/out" "$SIZE"
	t1=$(date +%s.%N)
	kill $rx; wait $rx || true
	cmp -s "$T/in" "$T/out" || echo "$1: OUTPUT DIFFERS"
	printf '%-28s %6.2f s %8.1f MB/s\n' "$1" "$(echo "$t1 - $t0" | bc)" \
		"$(echo "$SIZE / ($t1 - $t0) / 1000000" | bc -l)"
}

run_socat() { # name, sender command
	rm -f "$T/out"
	local port
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	socat -b 262144 -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$T/out,creat,trunc" &
	local rx=$! t0 t1
	sleep 0.2
	t0=$(date +%s.%N)
	eval "$2"
	wait $rx
	t1=$(date +%s.%N)
	cmp -s "$T/in" "$T/out" || echo "$1: OUTPUT DIFFERS"
	printf '%-28s %6.2f s %8.1f MB/s\n' "$1" "$(echo "$t1 - $t0" | bc)" \
		"$(echo "$SIZE / ($t1 - $t0) / 1000000" | bc -l)"
}

echo "io bench: $MIB MiB of 100-byte lines over TCP loopback"
run_bringcat "bringcat pair (io_uring)" ""
run_bringcat "bringcat pair (--no-uring)" "--no-uring"
run_socat "socat pair (-b 262144)" \
	"socat -b 262144 -u OPEN:$T/in TCP:127.0.0.1:\$port"
run_socat "cat | socat (relay)" \
	"cat $T/in | socat -b 262144 -u - TCP:127.0.0.1:\$port"
if [ "${STRACE:-0}" = 1 ] && command -v strace >/dev/null; then
	for m in "" --no-uring; do
		STRACE_CMD="strace -c -f -o $T/strace" run_bringcat "sender under strace $m" "$m" >/dev/null
		calls=$(awk '/^100.00/ {print $4}' "$T/strace")
		printf 'sender syscalls %-12s %8s total, %.1f per MB\n' "${m:-io_uring}" \
			"$calls" "$(echo "$calls / ($SIZE / 1000000)" | bc -l)"
	done
fi
