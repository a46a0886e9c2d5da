#!/bin/sh
# Builds the machine lab's base image: a Debian 12 root file system that
# every lab machine boots from, through an overlay of its own. A lab machine
# cannot reach Debian's mirror, so the image carries everything the roles
# install (bind9, nginx with its stream module, dnsdist) and what Ansible
# needs on a target (python3, python3-apt, sudo, openssh-server).
#
# Usage: build-base.sh DIR          build the image into DIR
#        build-base.sh --check DIR  exit 0 if DIR holds this script's image
# DIR is replaced only once the new image is complete, so an interrupted
# build never leaves a half-made image behind.
set -eu
# Bump when the packages or settings below change: `make lab-image` then
# rebuilds images made by an older version of this script.
version=1
if [ "${1:-}" = --check ]; then
	grep -qs "^dnsroll-base v$version " "${2:?usage: build-base.sh --check DIR}/etc/dnsroll-base"
	exit
fi
dir=${1:?usage: build-base.sh DIR}
mirror=${DNSROLL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=systemd-sysv,dbus,openssh-server,python3,python3-apt,sudo,iproute2,ifupdown,udev,kmod,procps,bind9,bind9-dnsutils,nginx,libnginx-mod-stream,dnsdist
tmp="$dir.building"
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
echo "building the machine lab's base image in $dir (about 4 minutes, once)"
debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror" >"$tmp.log" 2>&1 || {
	tail -20 "$tmp.log" >&2
	exit 1
}
# Machines get their own host keys at boot (lab/machines), not the base's.
rm -f "$tmp"/etc/ssh/ssh_host_*
# Debian starts the services it installs; a role decides when they run.
for unit in named nginx dnsdist; do
	chroot "$tmp" systemctl disable "$unit" >/dev/null 2>&1 || true
done
# No console logins to wait for, and nothing to resolve names with.
chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-resolved.service >/dev/null 2>&1 || true
echo "dnsroll-base v$version $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/etc/dnsroll-base"
rm -rf "$dir"
mv "$tmp" "$dir"
rm -f "$tmp.log"
echo "base image ready: $dir"
