# Sourced by scripts/up.sh: start commands in process groups of their own and stop exactly those, once.
#
#   start_group LOG CMD...   runs CMD in a new session (its own process group), output to LOG; returns once the
#                            group exists, so a stop right after it still finds it
#   stop_on_signals          Ctrl-C / SIGTERM stop every group started and end the script (130 / 143); so does
#                            any exit
#   stop_groups              SIGTERM to each group started, then SIGKILL to any still there after
#                            RAGOPS_STOP_GRACE_S whole seconds (default 30)
#
# While stopping, further SIGINT/SIGTERM are ignored: `make up` stopped with SIGTERM forwards a second SIGTERM to
# this shell, and a second Ctrl-C must not cut the cleanup short and leave Airflow running without its owner.
# Airflow runs each task in a process group of its own: a task still running after the grace period outlives the
# SIGKILL of Airflow's group, and Airflow marks it failed on its next start.
RAGOPS_GROUPS=()

_group_alive() { kill -0 -- "-$1" 2>/dev/null; }

start_group() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 10))
  RAGOPS_GROUPS+=("$pid")
  # setsid runs in the child: until it has, the group does not exist and a stop could not signal it.
  while ! _group_alive "$pid" && kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.05; done
}

_signal_groups() {
  local sig=$1 pid
  for pid in "${RAGOPS_GROUPS[@]}"; do
    kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
  done
}

stop_groups() {
  trap '' INT TERM
  trap - EXIT
  local grace="${RAGOPS_STOP_GRACE_S:-30}" pid
  [[ $grace =~ ^[0-9]+$ ]] || grace=30
  _signal_groups TERM  # before any output: a closed terminal or pipe must not stop the stop
  { echo; echo "stopping ragops (process groups: ${RAGOPS_GROUPS[*]:-none})"; } >&2 2>/dev/null || true
  local deadline=$((SECONDS + grace)) alive=1
  while (( alive && SECONDS < deadline )); do
    alive=0
    for pid in "${RAGOPS_GROUPS[@]}"; do _group_alive "$pid" && alive=1; done
    (( alive )) && sleep 0.1
  done
  for pid in "${RAGOPS_GROUPS[@]}"; do
    if _group_alive "$pid"; then
      echo "process group $pid did not stop within ${grace}s: SIGKILL" >&2 2>/dev/null || true
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  for pid in "${RAGOPS_GROUPS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

stop_on_signals() {
  trap 'stop_groups; exit 130' INT
  trap 'stop_groups; exit 143' TERM
  trap stop_groups EXIT
}
