#!/bin/sh
# Builds the machine lab's base image: a Debian 12 root file system that
# every lab machine boots from, through an overlay of its own. It is a
# brand-new cloud VM: python3, sudo and openssh-server, and none of the
# servers the roles install. A lab machine cannot reach Debian's mirror, so
# the packages the roles install (bind9, nginx with its stream module,
# dnsdist, python3-apt for Ansible), with what they depend on or recommend,
# wait uninstalled in a local repository, /srv/dnsroll-lab-repo, the
# image's only apt source: the roles' apt tasks run there as on a real VM.
#
# Usage: build-base.sh DIR          build the image into DIR
#        build-base.sh --check DIR  exit 0 if DIR holds this script's image
# DIR is replaced only once the new image is complete, so an interrupted
# build never leaves a half-made image behind.
set -eu
# Bump when the packages or settings below change: `make lab-image` then
# rebuilds images made by an older version of this script.
version=3
if [ "${1:-}" = --check ]; then
	grep -qs "^dnsroll-base v$version " "${2:?usage: build-base.sh --check DIR}/etc/dnsroll-base"
	exit
fi
dir=${1:?usage: build-base.sh DIR}
mirror=${DNSROLL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The VM: what a cloud image has and Ansible needs on a target.
packages=systemd-sysv,dbus,openssh-server,python3,sudo,iproute2,ifupdown,udev,kmod,procps
# What the roles install (python3-apt: Ansible's apt module installs it).
role_packages="bind9 bind9-utils bind9-dnsutils nginx libnginx-mod-stream dnsdist python3-apt"
command -v dpkg-scanpackages >/dev/null || {
	echo "build-base.sh: dpkg-scanpackages is missing: apt-get install dpkg-dev (make deps does)" >&2
	exit 1
}
tmp="$dir.building"
rm -rf "$tmp"
mkdir -p "$(dirname "$dir")"
echo "building the machine lab's base image in $dir (about 4 minutes, once)"
# step runs a build step, its output in the log, which it shows on failure.
step() {
	"$@" >>"$tmp.log" 2>&1 || {
		echo "build-base.sh: failed: $*" >&2
		tail -20 "$tmp.log" >&2
		exit 1
	}
}
: >"$tmp.log"
step debootstrap --variant=minbase --include="$packages" bookworm "$tmp" "$mirror"
# Machines get their own host keys at boot (lab/machines), not the base's.
rm -f "$tmp"/etc/ssh/ssh_host_*
# The roles' packages and everything they depend on or recommend, fetched
# from the mirror but not installed; then the local repository: every
# package fetched, indexed, the image's only source.
step chroot "$tmp" apt-get update -q
step chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -q -y --download-only $role_packages
repo=/srv/dnsroll-lab-repo
mkdir -p "$tmp$repo"
mv "$tmp"/var/cache/apt/archives/*.deb "$tmp$repo"/
step sh -c "cd '$tmp$repo' && dpkg-scanpackages --multiversion . /dev/null >Packages"
echo "deb [trusted=yes] file:$repo ./" >"$tmp/etc/apt/sources.list"
# Package lists from the repository only, as a cloud image has lists.
step chroot "$tmp" apt-get update -q
# No console logins to wait for, and nothing to resolve names with.
chroot "$tmp" systemctl mask console-getty.service getty@tty1.service systemd-resolved.service >/dev/null 2>&1 || true
echo "dnsroll-base v$version $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/etc/dnsroll-base"
rm -rf "$dir"
mv "$tmp" "$dir"
rm -f "$tmp.log"
echo "base image ready: $dir"
