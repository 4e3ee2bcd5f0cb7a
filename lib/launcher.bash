# The step launcher of bootstrap (see src/pipeline/launcher.ts): runs the files it is told to,
# one after another, each in its own process group. Commands come on fd 3, one per line:
#   R <seq> <path>   run <path> (unless an earlier one failed); then write an end line
#   C                clear the failed state
# End line, on stdout: NUL, $BOOTSTRAP_LAUNCHER_NONCE, seq, exit status (K: skipped).
# $1: 1 when restarted after a step died of SIGINT (the failed state carries over).
set -m                # every job, foreground too, in its own process group, even with no tty
exec 2>/dev/null      # bash's own notices; a step's stderr goes to stdout (2>&1 below)
trap : INT            # see the end of this file; trapped, not ignored: steps get INT at default
failed=${1-}
running=
while IFS=' ' read -r -u 3 op seq path; do
  if [ "$op" = C ]; then failed=; continue; fi
  rc=K
  if [ -z "$failed" ]; then
    running=$seq
    "$path" 2>&1 3<&-
    rc=$?
    running=
    [ "$rc" = 0 ] || failed=1
  fi
  printf '\000%s %s %s\n' "$BOOTSTRAP_LAUNCHER_NONCE" "$seq" "$rc"
done
# Here at the end of the commands, or because the running step died of SIGINT: under job
# control bash then unwinds every loop as if it had been interrupted itself. Report the step
# and start over, in this same process (its PID is in the run lock record).
if [ -n "$running" ]; then
  printf '\000%s %s %s\n' "$BOOTSTRAP_LAUNCHER_NONCE" "$running" 130
  exec "$BASH" --noprofile --norc "$0" 1
fi
