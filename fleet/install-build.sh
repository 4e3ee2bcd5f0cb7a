#!/bin/sh
# On the controller, for fleet/install.yml: the file sent to a server (install-bundle.sh, then a
# tar of install-agent.sh and what it installs) and the phases tree's version.
#   install-build.sh OUT PACKAGE PREVIOUS CONFIG_DIR   (an empty argument: none)
# Prints two lines: the bundle's path, the tree's version (empty: no tree).
# The version: the first line of CONFIG_DIR/phases/VERSION if there is one (the tree's own);
# else, in a git checkout, the commit of HEAD (with -dirty when the tree differs from it); else
# sha256: and the first 16 hex digits of a hash of the tree's paths, modes and contents. It is
# written into the tree sent as phases/VERSION, which `server.status` shows.
set -eu
umask 022
out=$1 package=$2 previous=$3 config=$4
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/bootstrap-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$here/install-agent.sh" "$stage/"
[ -z "$package" ] || cp "$package" "$stage/agent.deb"
[ -z "$previous" ] || cp "$previous" "$stage/previous.deb"
version=
if [ -n "$config" ]; then
	[ ! -f "$config/bootstrap.ini" ] || cp "$config/bootstrap.ini" "$stage/"
	if [ -d "$config/phases" ]; then
		cp -a "$config/phases" "$stage/phases"
		rm -rf "$stage/phases/.git"
		if [ -f "$config/phases/VERSION" ]; then
			version=$(head -n 1 "$config/phases/VERSION")
		elif commit=$(git -C "$config/phases" rev-parse --verify -q HEAD 2>/dev/null); then
			version=$commit
			[ -z "$(git -C "$config/phases" status --porcelain -- . 2>/dev/null)" ] || version=$commit-dirty
		else
			version=sha256:$(cd "$config/phases" && find . -type f -print | LC_ALL=C sort | while read -r f; do
				printf '%s %s %s\n' "$f" "$(stat -c %a "$f")" "$(sha256sum <"$f" | cut -c1-64)"
			done | sha256sum | cut -c1-16)
		fi
		printf '%s\n' "$version" >"$stage/phases/VERSION"
	fi
fi
mkdir -p "$out"
bundle=$(mktemp "$out/bundle.XXXXXX")
{ cat "$here/install-bundle.sh"; tar -C "$stage" -c .; } >"$bundle"
chmod 700 "$bundle"
printf '%s\n%s\n' "$bundle" "$version"
