#!/bin/sh
# The head of the file fleet/install.yml sends to each server with `script` (no Python needed on
# the server): this script, then a tar of what the server gets (install-build.sh makes it).
#   BUNDLE LABEL BUSY_WAIT SETTLE TIMEOUT
# Unpacks it into a new dir under /var/lib/bootstrap-agent/install/, starts install-agent.sh
# there in a session of its own (a lost connection never cuts dpkg short), waits up to TIMEOUT s
# for its result and prints it (one JSON object). The last 5 such dirs are kept (their log and
# result).
set -eu
umask 077
label=$1 busy_wait=$2 settle=$3 timeout=$4
base=/var/lib/bootstrap-agent/install
mkdir -p "$base"
stage=$(mktemp -d "$base/$(date -u +%Y%m%dT%H%M%SZ).XXXXXX")
line=$(awk '/^__BOOTSTRAP_INSTALL_PAYLOAD__$/ { print NR + 1; exit }' "$0")
tail -n +"$line" "$0" | tar -x -C "$stage"
setsid sh "$stage/install-agent.sh" "$stage" "$label" "$busy_wait" "$settle" </dev/null >/dev/null 2>&1 &
n=0
while [ ! -f "$stage/result.json" ]; do
	if [ "$n" -ge "$timeout" ]; then
		printf '{"status": "failed", "message": "no result after %s s (it goes on: see %s/log)"}\n' "$timeout" "$stage"
		exit 0
	fi
	sleep 1
	n=$((n + 1))
done
cat "$stage/result.json"
# Only the log and the result stay: the packages are kept elsewhere, the ini may hold secrets.
rm -rf "$stage/agent.deb" "$stage/previous.deb" "$stage/bootstrap.ini" "$stage/phases"
ls -d "$base"/*/ 2>/dev/null | sort -r | tail -n +6 | while read -r old; do rm -rf "$old"; done
exit 0
__BOOTSTRAP_INSTALL_PAYLOAD__
