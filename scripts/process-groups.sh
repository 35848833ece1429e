# Sourced by scripts/up.sh: start commands in process groups of their own and stop exactly those, once.
#
#   start_group LOG CMD...   runs CMD in a new session (its own process group), output to LOG
#   stop_groups              SIGTERM to each group started, then SIGKILL to any still there after
#                            RAGOPS_STOP_GRACE_S seconds (default 30)
#
# While stopping, further SIGINT/SIGTERM are ignored: `make up` stopped with SIGTERM forwards a second SIGTERM to
# this shell, and a second Ctrl-C must not cut the cleanup short and leave Airflow running without its owner.
RAGOPS_GROUPS=()

start_group() {
  local log=$1; shift
  setsid "$@" >"$log" 2>&1 &
  RAGOPS_GROUPS+=($!)
}

_group_alive() { kill -0 -- "-$1" 2>/dev/null; }

stop_groups() {
  trap '' INT TERM
  trap - EXIT
  echo; echo "stopping ragops (process groups: ${RAGOPS_GROUPS[*]:-none})"
  local pid waited=0 grace="${RAGOPS_STOP_GRACE_S:-30}"
  for pid in "${RAGOPS_GROUPS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  while (( waited < grace * 10 )); do
    local alive=0
    for pid in "${RAGOPS_GROUPS[@]}"; do _group_alive "$pid" && alive=1; done
    (( alive )) || break
    sleep 0.1; waited=$((waited + 1))
  done
  for pid in "${RAGOPS_GROUPS[@]}"; do
    if _group_alive "$pid"; then
      echo "process group $pid did not stop within ${grace}s: SIGKILL"
      kill -KILL -- "-$pid" 2>/dev/null || true
    fi
  done
  for pid in "${RAGOPS_GROUPS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
