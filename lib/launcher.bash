# The step launcher of bootstrap (see src/pipeline/launcher.ts): runs the files it is told to,
# one after another, each in its own process group. Commands come on fd 3, one per line; the
# first line is `NONCE DIR` (the end-line nonce, kept out of the steps' environment, and the
# phase dir), then:
#   R <seq> <name>   run DIR/<name> (unless an earlier one failed); then write an end line
#   S <seq> <name>   the same, with /bin/sh (a file with no #! line, [phases] no_shebang = sh)
#   C                clear the failed state
# End line, on stdout: NUL, nonce, seq, exit status (K: skipped). First line on stdout: NUL,
# nonce, `P`, the PID of the output relay (not a step: never to be killed as one).
set -m                # every job, foreground too, in its own process group, even with no tty
exec 2>/dev/null      # bash's own notices; a step's stderr goes to stdout (2>&1 below)
trap : INT            # see the end of this file; trapped, not ignored: steps get INT at default
if [ -n "${BOOTSTRAP_LAUNCHER_RESTART-}" ]; then
  # Restarted after a step died of SIGINT: same stdout (the relay's pipe), same state.
  IFS=' ' read -r failed nonce dir <<<"$BOOTSTRAP_LAUNCHER_RESTART"
  unset BOOTSTRAP_LAUNCHER_RESTART
  [ "$failed" = - ] && failed=
else
  IFS=' ' read -r -u 3 nonce dir || exit 0
  failed=
  # Steps write into a real pipe, as under os-refresh-config: opening /dev/stdout or
  # /dev/stderr works (on the agent's socket it fails with ENXIO). cat relays it.
  exec > >(exec cat)
  printf '\000%s P %s\n' "$nonce" "$!"
fi
running=
while IFS=' ' read -r -u 3 op seq name; do
  if [ "$op" = C ]; then failed=; continue; fi
  rc=K
  if [ -z "$failed" ]; then
    running=$seq
    if [ "$op" = S ]; then /bin/sh "$dir/$name" 2>&1 3<&-; else "$dir/$name" 2>&1 3<&-; fi
    rc=$?
    running=
    [ "$rc" = 0 ] || failed=1
  fi
  printf '\000%s %s %s\n' "$nonce" "$seq" "$rc"
done
# Here at the end of the commands, or because the running step died of SIGINT: under job
# control bash then unwinds every loop as if it had been interrupted itself. Report the step
# and start over, in this same process (its PID is in the run lock record).
if [ -n "$running" ]; then
  printf '\000%s %s %s\n' "$nonce" "$running" 130
  BOOTSTRAP_LAUNCHER_RESTART="1 $nonce $dir" exec "$BASH" --noprofile --norc "$0"
fi
