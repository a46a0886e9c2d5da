#!/bin/sh
# Builds the machine lab's base image: a Debian 12 root file system that
# every lab machine boots from, through an overlay of its own. It is a
# brand-new cloud VM: python3, sudo and openssh-server, and none of the
# servers the roles install. A lab machine cannot reach Debian's mirror, so
# the packages the roles install (bind9, nginx with its stream module,
# dnsdist, python3-apt for Ansible) and their dependencies wait in a local
# repository, /srv/dnsroll-lab-repo, the image's only apt source: the roles'
# apt tasks run there as on a real VM.
#
# Usage: build-base.sh DIR          build the image into DIR
#        build-base.sh --check DIR  exit 0 if DIR holds this script's image
# DIR is replaced only once the new image is complete, so an interrupted
# build never leaves a half-made image behind.
set -eu
# Bump when the packages or settings below change: `make lab-image` then
# rebuilds images made by an older version of this script.
version=2
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
# The local repository: every package debootstrap fetched, indexed.
repo=/srv/dnsroll-lab-repo
mkdir -p "$tmp$repo"
mv "$tmp"/var/cache/apt/archives/*.deb "$tmp$repo"/
(cd "$tmp$repo" && dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null)
echo "deb [trusted=yes] file:$repo ./" >"$tmp/etc/apt/sources.list"
# The roles' packages go again, as a cloud image has none of them; their
# scripts must not try to stop services in a chroot.
printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
chmod 755 "$tmp/usr/sbin/policy-rc.d"
chroot "$tmp" dpkg --purge bind9 bind9-utils bind9-dnsutils nginx libnginx-mod-stream nginx-common dnsdist python3-apt >>"$tmp.log" 2>&1 || {
	tail -20 "$tmp.log" >&2
	exit 1
}
rm "$tmp/usr/sbin/policy-rc.d"
# Package lists from the repository, as a cloud image has lists.
chroot "$tmp" apt-get update -qq >>"$tmp.log" 2>&1
# No console logins to wait for, and nothing to resolve names with.
chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-resolved.service >/dev/null 2>&1 || true
echo "dnsroll-base v$version $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/etc/dnsroll-base"
rm -rf "$dir"
mv "$tmp" "$dir"
rm -f "$tmp.log"
echo "base image ready: $dir"
