#!/bin/sh
# Creates the dnsdist console key file $1 (32 random bytes, base64) unless it
# exists. The key is generated here, on the load balancer, and is never
# printed: Ansible and dnsroll only ever see the file's path.
set -eu
key=$1
[ -s "$key" ] && exit 0
umask 077
head -c 32 /dev/urandom | base64 >"$key.tmp"
mv "$key.tmp" "$key"
echo created
