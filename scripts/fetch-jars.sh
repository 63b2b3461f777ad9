#!/usr/bin/env bash
# Copy a pom's jars from Maven Central into a cache folder (`make jars`): fetch-jars.sh POM DEST [mvn options]
#
# The cache is shared by every checkout of the machine, and a running job may be reading it: a
# pom whose content is already cached is only re-stamped (a fresh checkout has newer file times,
# not new jars), and a changed one is fetched into a new folder that replaces the old one in a
# single rename, so a folder is never half full.
set -euo pipefail
pom=$1 dest=$2
shift 2
if cmp -s "$pom" "$dest/.pom"; then
  touch "$dest/.pom"
  exit 0
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" "$@"
cp "$pom" "$tmp/.pom"
old="$dest.old.$$"
[ -d "$dest" ] && mv "$dest" "$old"
mv "$tmp" "$dest"
rm -rf "$old"
