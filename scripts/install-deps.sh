#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages bring needs to build, test and benchmark.
# Idempotent: does nothing when everything is there. Not root: prints the
# exact apt-get line and fails.
#
#   scripts/install-deps.sh [--quiet] [--check]
#     --quiet   print nothing when nothing is missing
#     --check   only report what is missing (exit 1 if anything is)

set -eu

PACKAGES="
	build-essential
	pkg-config
	binutils
	perl
	liburing-dev
	libbpf-dev
	bpftool
	clang
	llvm
	libclang-rt-14-dev
	libelf-dev
	zlib1g-dev
	systemtap-sdt-dev
	bpftrace
	libck-dev
	socat
	librdkafka-dev
	kcat
	bsdutils
	strace
	python3
	python3-prometheus-client
	rsyslog
"

quiet=0
check=0
for arg in "$@"; do
	case "$arg" in
	--quiet) quiet=1 ;;
	--check) check=1 ;;
	*) echo "usage: $0 [--quiet] [--check]" >&2; exit 2 ;;
	esac
done

missing=""
for p in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $p"
done

if [ -z "$missing" ]; then
	[ "$quiet" = 1 ] || echo "install-deps: all packages present"
	exit 0
fi

echo "install-deps: missing:$missing" >&2
if [ "$check" = 1 ]; then
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root, or: sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# rsyslog is a peer the tests run in the foreground with their own
# config: no system daemon started by the install (invoke-rc.d and
# deb-systemd-invoke ask policy-rc.d; 101 is "action forbidden").
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
echo "install-deps: installed:$missing"
