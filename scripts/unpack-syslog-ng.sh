#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Unpack Debian's syslog-ng (and the two libraries it needs that rsyslog
# does not pull in) into DIR without installing it: syslog-ng-core
# conflicts with rsyslog as a package, and the tests want both. The
# syslog selftest runs DIR/usr/sbin/syslog-ng from there when it finds
# DIR (default build/syslog-ng, or $BRING_SYSLOG_NG); else it SKIPs.
#
#   scripts/unpack-syslog-ng.sh [DIR]
set -eu
cd "$(dirname "$0")/.."

dir=$(realpath -m "${1:-build/syslog-ng}")
[ -x "$dir/usr/sbin/syslog-ng" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's _apt user downloads into it
(cd "$tmp" && apt-get download -q syslog-ng-core libivykis0 libnet1)
mkdir -p "$dir"
for deb in "$tmp"/*.deb; do
	dpkg -x "$deb" "$tmp/root"
done
# The programs and libraries only: etc/ has *.d directories that the
# Makefile would take for dependency files.
mv "$tmp/root/usr" "$dir/usr"
echo "unpack-syslog-ng: unpacked into $dir"
