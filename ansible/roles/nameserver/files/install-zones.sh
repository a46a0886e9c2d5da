#!/bin/sh
# Installs a zone set on a nameserver in one step: unpacks the archive that
# zone-archive.py made into a staging directory, loads every zone once with
# named-checkconf -z, writes zones.conf (named.conf includes it) and the
# serials file, and only then points LINK at the new set with one rename.
# A zone that fails leaves LINK, and so the running zones, as they were.
#
# Usage: install-zones.sh ARCHIVE LINK SETS [GROUP]
#   ARCHIVE  the zone archive, inside SETS
#   LINK     the zone directory named.conf refers to: a symlink to SETS/<sha256>
#   SETS     where zone sets are unpacked; sets other than the new one are removed
#   GROUP    group that must read the zones (bind on a VM), or empty
# Prints "installed <sha256>", or "unchanged <sha256>" when LINK already
# points at this archive's set.
set -eu
archive=$1 link=$2 sets=$3 group=${4:-}

sum=$(sha256sum "$archive" | cut -c1-64)
set_dir=$sets/$sum
if [ "$(readlink "$link" || true)" = "$set_dir" ] && [ -f "$set_dir/zones.conf" ] && [ -f "$set_dir/serials" ]; then
	echo "unchanged $sum"
	exit 0
fi

stage=$sets/$sum.staging
check=$sets/$sum.check.conf
out=$sets/$sum.check.out
trap 'rm -rf "$stage" "$check" "$out"' EXIT
rm -rf "$stage"
mkdir "$stage"
# -m: the files are as new as their install, which is what the role's
# reload check (find -newer) compares.
tar -xzmf "$archive" -C "$stage" --no-same-owner --no-same-permissions

# One named-checkconf -z loads every zone as named will, in one process.
# zones.conf names the files through LINK, which makes it the same for
# every set; the check config names the staged files.
# One awk writes both for every zone: a shell loop opened each file once
# per zone, 6 s for 100,000 zones. A file's name is its zone's with "/"
# written %2F (zone-archive.py's file_name); the zone statement gets the
# real name back.
printf 'options { directory "%s"; };\n' "$stage" >"$check"
count=$(find "$stage" -maxdepth 1 -type f -name '*.zone' | LC_ALL=C sort |
	awk -v check="$check" -v conf="$stage/zones.conf" -v link="$link" '
		{
			f = $0
			sub(/^.*\//, "", f)
			z = f
			sub(/\.zone$/, "", z)
			gsub(/%2F/, "/", z)
			printf "zone \"%s\" { type primary; file \"%s\"; };\n", z, $0 >> check
			printf "zone \"%s\" {\n\ttype primary;\n\tfile \"%s/%s\";\n};\n", z, link, f > conf
			n++
		}
		END { print n + 0 }')
if [ "$count" -eq 0 ]; then
	echo "the zone archive $archive holds no zones" >&2
	exit 1
fi
if ! named-checkconf -z "$check" >"$out" 2>&1; then
	failed=$(grep -c 'not loaded due to errors' "$out" || true)
	# named-checkconf names each failing zone, and its file and line; the
	# file is shown without the staging directory, as <zone>.zone.
	{
		echo "failed to validate $failed of $count zones (named-checkconf -z); the running zones are unchanged:"
		grep -v -e ': loaded serial ' -e '^_default/' -e 'not loaded due to errors' "$out" | sed "s|$stage/||g"
	} >&2
	exit 1
fi
sed -n 's|^zone \(.*\)/IN: loaded serial \([0-9]*\).*|\1 \2|p' "$out" >"$stage/serials"

find "$stage" -type f -exec chmod 0644 {} +
chmod 0750 "$stage"
if [ -n "$group" ]; then
	chgrp -R "$group" "$stage"
fi

# A set left by a run that stopped between this rename and the switch is
# replaced, not trusted.
rm -rf "$set_dir"
mv "$stage" "$set_dir"
# An older version of the role kept the zones in a plain directory at LINK.
if [ -d "$link" ] && [ ! -L "$link" ]; then
	rm -rf "$sets/legacy"
	mv "$link" "$sets/legacy"
fi
ln -sfn "$set_dir" "$link.new"
mv -T "$link.new" "$link"

for d in "$sets"/* "$sets"/.[!.]*; do
	[ -e "$d" ] || continue
	[ "$d" = "$set_dir" ] || [ "$d" = "$archive" ] || rm -rf "$d"
done
echo "installed $sum"
