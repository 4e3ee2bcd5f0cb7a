# The step launcher of bootstrap (see src/pipeline/launcher.ts): runs the files it is told to,
# one after another, each in its own process group. Commands come on fd 3, one per line; the
# first line is `NONCE DIR` (the end-line nonce, kept out of the steps' environment, and the
# phase dir), the second `PROBE TAG CLEANUP CHANGES`: the block size of the changes dir's
# filesystem, a tag of this launcher's files (several launchers of a run share the dir), 1 when
# it runs clean-up (backouts, error.d: they run even without a changes file) and the dir of the
# changes files (empty: none), then:
#   R <seq> <name> [<k>]   run DIR/<name> (unless an earlier one failed); then write an end
#                    line. If it exits 0 having asked for a reboot (created its
#                    BOOTSTRAP_REBOOT_FILE), its end line says B, the next k files (its check) still run, and
#                    then nothing more: the run pauses.
#   S <seq> <name> [<k>]   the same, with /bin/sh (no #! line, [phases] no_shebang = sh)
#   B <seq> <name> [<k>]   the same, with this bash (no #! line, [phases] no_shebang = bash: a new
#                    process, as dib-run-parts' bash runs such a file, without this script's variables)
#   IR|IS|IB <seq> <name> <n>   a condition (NAME.if): exit 0 goes on, 1 skips the next n (the
#                    step and its check), anything else fails as a step does
#   C                clear the failed state
# Each file gets BOOTSTRAP_CHANGES, an empty file of its own (CHANGES/<tag>.<seq>), to report
# changes, and BOOTSTRAP_REBOOT_FILE (CHANGES/<tag>.<seq>.reboot, not created): a file that exits
# 0 having created it asks for a reboot, even if writing its reason failed (a full filesystem
# must not turn a request into "nothing asked"). Nor a report into "nothing reported": a step
# whose changes file cannot be created does not run (status F; clean-up runs, flagged L); after
# a file ran, one block is appended to CHANGES/probe (kept open): if that fails (or it could not
# be opened), there was no room, what it wrote may be lost (flag L), and nothing more runs.
# End line, on stdout: NUL, nonce, seq, exit status (K: skipped after a failure or a pause, N:
# skipped by a condition, F: not run, see above), and B when it asked for a reboot, L when its
# reports may be lost. First line on stdout: NUL, nonce, `P`, the PID of the output relay (not a
# step: never to be killed as one).
set -m                # every job, foreground too, in its own process group, even with no tty
exec 2>/dev/null      # bash's own notices; a step's stderr goes to stdout (2>&1 below)
trap : INT            # see the end of this file; trapped, not ignored: steps get INT at default
if [ -n "${BOOTSTRAP_LAUNCHER_RESTART-}" ]; then
  # Restarted after a step died of SIGINT: same stdout (the relay's pipe), same state.
  IFS=' ' read -r failed nonce probe tag cleanup dir <<<"$BOOTSTRAP_LAUNCHER_RESTART"
  changes=$BOOTSTRAP_LAUNCHER_CHANGES
  unset BOOTSTRAP_LAUNCHER_RESTART BOOTSTRAP_LAUNCHER_CHANGES
  [ "$failed" = - ] && failed=
else
  IFS=' ' read -r -u 3 nonce dir || exit 0
  IFS=' ' read -r -u 3 probe tag cleanup changes || exit 0
  failed=
  # Steps write into a real pipe, as under os-refresh-config: opening /dev/stdout or
  # /dev/stderr works (on the agent's socket it fails with ENXIO). cat relays it.
  exec > >(exec cat)
  printf '\000%s P %s\n' "$nonce" "$!"
fi
# The probe, open once (fd 4, closed for steps): one write a file, no open.
probing=
[ -n "$changes" ] && exec 4>>"$changes/probe" && probing=1
running=
unless=0
pause=
export BOOTSTRAP_CHANGES=/dev/null BOOTSTRAP_REBOOT_FILE=/dev/null
while IFS=' ' read -r -u 3 op seq name skip; do
  if [ "$op" = C ]; then
    failed= unless=0 pause=
    continue
  fi
  rc=K
  asked=
  lost=
  if [ -z "$failed" ] && [ "$unless" -eq 0 ] && [ -n "$changes" ]; then
    BOOTSTRAP_CHANGES=$changes/$tag.$seq BOOTSTRAP_REBOOT_FILE=$changes/$tag.$seq.reboot
    # No changes file: a step does not run; clean-up (backouts, error.d) runs, its reports lost.
    : >"$BOOTSTRAP_CHANGES" || BOOTSTRAP_CHANGES=/dev/null BOOTSTRAP_REBOOT_FILE=/dev/null lost=1
  fi
  if [ -n "$failed" ]; then
    :
  elif [ "$unless" -gt 0 ]; then
    unless=$((unless - 1))
    rc=N
  elif [ -n "$lost" ] && [ "$cleanup" != 1 ]; then
    rc=F failed=1
  else
    running=$seq
    case $op in
      *S) /bin/sh "$dir/$name" 2>&1 3<&- 4>&- ;;
      *B) "$BASH" --noprofile --norc "$dir/$name" 2>&1 3<&- 4>&- ;;
      *) "$dir/$name" 2>&1 3<&- 4>&- ;;
    esac
    rc=$?
    running=
    case $op:$rc in
      I*:1) unless=$skip ;;
      I*:0) ;;
      *:0)
        if [ -n "$pause" ]; then
          pause=$((pause - 1))
        elif [ -n "$changes" ] && [ -z "$lost" ] && [ -e "$BOOTSTRAP_REBOOT_FILE" ]; then
          asked=' B'
          pause=${skip:-0}
        fi
        [ "$pause" = 0 ] && failed=1 ;;
      *) failed=1 ;;
    esac
    if [ -n "$lost" ] || { [ -n "$changes" ] && ! { [ -n "$probing" ] && printf '%*s' "$probe" '' >&4; }; }; then
      asked="$asked L" failed=1
    fi
  fi
  printf '\000%s %s %s%s\n' "$nonce" "$seq" "$rc" "$asked"
done
# Here at the end of the commands, or because the running step died of SIGINT: under job
# control bash then unwinds every loop as if it had been interrupted itself. Report the step
# and start over, in this same process (the agent knows the launcher by its PID: it finds the
# running step among its children).
if [ -n "$running" ]; then
  printf '\000%s %s %s\n' "$nonce" "$running" 130
  BOOTSTRAP_LAUNCHER_RESTART="1 $nonce $probe $tag $cleanup $dir" BOOTSTRAP_LAUNCHER_CHANGES=$changes exec "$BASH" --noprofile --norc "$0"
fi
