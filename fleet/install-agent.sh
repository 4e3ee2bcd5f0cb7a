#!/bin/sh
# Run on a server by fleet/install.yml (docs/fleets.md, "Installing and upgrading the agent"), as
# root, detached from the ssh connection (install-bundle.sh starts it with setsid): a connection
# lost mid-way never cuts dpkg short, and the runs are always allowed again at the end.
#
#   sh install-agent.sh STAGE LABEL BUSY_WAIT SETTLE
#
# STAGE holds what the controller sent: agent.deb (the package to install), previous.deb (the
# controller's `previous_package`), bootstrap.ini, phases/ (with its VERSION); each optional.
# Writes STAGE/result.json (one JSON object, the last thing it does: status success, busy or
# failed, and what the report shows) and logs to STAGE/log.
#
# While the agent may run (it is installed and answers), nothing is replaced during a run:
#  1. `server.disable --reason "agent upgrade LABEL"` stops new runs (the timer's refresh then
#     exits 0 doing nothing) unless an operator has already disabled the server (then it is left
#     disabled, with the operator's reason, at the end);
#  2. wait (up to BUSY_WAIT s) until the run lock is free and stays free SETTLE s: the disable
#     gate is read before a run takes its lock, so a run that passed it just before, or one that
#     waits for the lock with --wait, takes the lock within that time;
#  3. the package, then the ini and the tree; then `server.enable` (in an EXIT trap: on any way
#     out of this script, failure included, a disable of ours never outlives it).
set -u
stage=$1 label=$2 busy_wait=$3 settle=$4
agent=/usr/bin/bootstrap
lib=/var/lib/bootstrap-agent/packages
log=$stage/log
exec >>"$log" 2>&1
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

status=failed message= before= after= put_back=false installed_at= waited=0 ours=false
say() { printf '%s %s\n' "$(date -u +%FT%TZ)" "$*"; }
# A JSON string of $1 (control characters dropped).
js() { printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
jsn() { if [ -n "$1" ]; then js "$1"; else printf null; fi; }

finish() {
	if [ "$ours" = true ]; then
		"$agent" server.enable >/dev/null 2>&1 || say "server.enable failed: runs stay disabled"
	fi
	version=$(head -n 1 /etc/bootstrap/phases/VERSION 2>/dev/null || true)
	{
		printf '{"status": %s, "message": %s, "package_before": %s, "package_after": %s,' "$(js "$status")" "$(js "$message")" "$(jsn "$before")" "$(jsn "$after")"
		printf ' "put_back": %s, "installed_at": %s, "waited_s": %s, "phases_version": %s}\n' "$put_back" "$(jsn "$installed_at")" "$waited" "$(jsn "$version")"
	} >"$stage/result.json.tmp"
	mv "$stage/result.json.tmp" "$stage/result.json"
	say "done: $status${message:+ ($message)}"
}
trap finish EXIT
trap 'message="stopped by a signal"; exit 1' HUP INT TERM

# "NAME VERSION" of the installed agent package, or nothing.
installed() {
	dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' bootstrap-agent bootstrap-agent-node 2>/dev/null |
		awk '$1 == "ii" { print $2, $3; exit }'
}
# The CLI's --version is the package's upstream version (no epoch, no Debian revision).
upstream() { printf '%s' "$1" | sed 's/^[0-9]*://; s/-[^-]*$//'; }
works() { [ "$("$agent" --version 2>/dev/null)" = "$(upstream "$1")" ]; }
lock_free() { "$agent" server.status ${1:+--wait="$1"} 2>/dev/null | grep -q '^lock: *free$'; }

install_deb() {
	if command -v apt-get >/dev/null; then
		apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confold "$1"
	else
		dpkg -i "$1"
	fi
}

# Stop new runs and wait for the one in progress (steps 1 and 2 above); 1: still busy.
quiesce() {
	status_out=$("$agent" server.status 2>&1) || { say "server.status failed, so not quiesced (an agent that cannot read its configuration starts no run): $status_out"; return 0; }
	if printf '%s\n' "$status_out" | grep -q '^reboot:'; then message="a run waits for its reboot: not upgraded (run it again once it has resumed)"; return 1; fi
	# A disable of an earlier install.yml whose worker was killed (kill -9, a crash) is ours too.
	if printf '%s\n' "$status_out" | grep -q '^disabled:.*agent upgrade .* (fleet/install.yml)'; then
		ours=true
	elif ! printf '%s\n' "$status_out" | grep -q '^disabled:'; then
		"$agent" server.disable --reason "agent upgrade $label (fleet/install.yml)" || { message="server.disable failed"; return 1; }
		ours=true
	fi
	start=$(date +%s)
	deadline=$((start + busy_wait))
	while :; do
		left=$((deadline - $(date +%s)))
		[ "$left" -lt 0 ] && left=0
		if lock_free "$left"; then
			sleep "$settle"
			lock_free && break
		fi
		if [ "$(date +%s)" -ge "$deadline" ]; then message="a run still held the run lock after ${busy_wait} s: not upgraded"; return 1; fi
	done
	waited=$(($(date +%s) - start))
	say "no run in progress (waited ${waited} s)"
}

# The new package, checked; the previous one put back where it fails.
upgrade() {
	new="$(dpkg-deb -f "$stage/agent.deb" Package) $(dpkg-deb -f "$stage/agent.deb" Version)"
	if [ "$new" = "$before" ] && works "${new#* }"; then say "already $new"; return 0; fi
	mkdir -p "$lib"
	# What to put back: the package this host was installed from (kept here), else the controller's.
	prev=
	if [ -n "$before" ] && [ -f "$lib/current.deb" ] && [ "$(dpkg-deb -f "$lib/current.deb" Package) $(dpkg-deb -f "$lib/current.deb" Version)" = "$before" ]; then
		prev=$lib/current.deb
	elif [ -f "$stage/previous.deb" ]; then
		prev=$stage/previous.deb
	fi
	installed_at=$(date -u +%FT%T.%3NZ)
	say "installing $new (was: ${before:-none})"
	if install_deb "$stage/agent.deb" && works "${new#* }"; then
		cp "$stage/agent.deb" "$lib/.new.deb" && mv "$lib/.new.deb" "$lib/current.deb"
		[ -n "$prev" ] && [ "$prev" != "$lib/current.deb" ] && cp "$prev" "$lib/previous.deb"
		after=$new
		return 0
	fi
	message="$new: bootstrap --version does not answer $(upstream "${new#* }") after the install"
	if [ -z "$prev" ]; then message="$message; no previous package to put back"; return 1; fi
	say "putting back $prev"
	if install_deb "$prev" && works "$(dpkg-deb -f "$prev" Version)"; then
		put_back=true message="$message; put back $(dpkg-deb -f "$prev" Package) $(dpkg-deb -f "$prev" Version)"
	else
		message="$message; putting back $prev failed too"
	fi
	return 1
}

# The ini, the tree (renamed into place: never half a tree), the units.
configure() {
	install -d -m 700 /etc/bootstrap
	if [ -f "$stage/bootstrap.ini" ]; then
		install -m 600 "$stage/bootstrap.ini" /etc/bootstrap/.bootstrap.ini.new && mv /etc/bootstrap/.bootstrap.ini.new /etc/bootstrap/bootstrap.ini || return 1
	fi
	if [ -d "$stage/phases" ]; then
		rm -rf /etc/bootstrap/.phases.new /etc/bootstrap/.phases.old
		cp -a "$stage/phases" /etc/bootstrap/.phases.new || return 1
		if [ -e /etc/bootstrap/phases ]; then mv /etc/bootstrap/phases /etc/bootstrap/.phases.old || return 1; fi
		mv /etc/bootstrap/.phases.new /etc/bootstrap/phases || return 1
		rm -rf /etc/bootstrap/.phases.old
	fi
	[ -f /etc/bootstrap/bootstrap.ini ] || { say "no /etc/bootstrap/bootstrap.ini: the units are not enabled"; return 0; }
	systemctl enable bootstrap-resume.service bootstrap-refresh.timer bootstrap-heartbeat.timer || return 1
	if [ -d /run/systemd/system ]; then systemctl start bootstrap-refresh.timer bootstrap-heartbeat.timer || return 1; fi
}

before=$(installed)
say "fleet/install.yml $label on $(hostname): agent ${before:-not installed}"
if [ -n "$before" ] && [ -x "$agent" ]; then
	quiesce || { status=busy; exit 0; }
fi
if [ -f "$stage/agent.deb" ]; then
	upgrade || exit 1
fi
[ -n "$after" ] || after=$(installed)
if ! configure; then message="placing the ini, the phases tree or enabling the units failed (see $log)"; status=failed; exit 1; fi
status=success
exit 0
