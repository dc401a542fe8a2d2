#!/bin/sh
# Runs the sockq binary as nobody (uid 65534) with exactly the capabilities listed (ambient, so
# they survive exec without file capabilities) against the two namespaces of setup.sh, and
# prints, per run: exit code, the port-700x listener's depth/backlog and owner, blind spots,
# or the first line of stderr.
#   matrix.sh BIN      (as root, after setup.sh)
bin=${1:?usage: matrix.sh PATH-TO-SOCKQ (world-executable, in world-searchable directories)}
DIR=${DIR:-/tmp/sockq-caps}
P=$(cat $DIR/unshared.pid)
run() { # caps target...
  caps=$1; shift
  if [ "$caps" = none ]; then c="-all"; else c="-all,$caps"; fi
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
      --inh-caps="$c" --ambient-caps="$c" --bounding-set="$c" \
      "$bin" snapshot --json "$@" 2>$DIR/err)
  rc=$?
  if [ $rc -eq 0 ]; then
    res=$(printf '%s' "$out" | jq -c '[.tcp_listeners[] | select(.port>=7001 and .port<=7002) |
      "\(.port) \(.accept_queue)/\(.backlog) owner=\(.owners.status)\(if .owners.processes then ":"+(.owners.processes|map("\(.comm)[\(.pid)] fds=\(.fds_open // "?")/\(.fd_limit // "?")")|join(",")) else "" end)"] + [.blind_spots[]? | tostring | .[0:110]]')
  else
    res=$(head -c 200 $DIR/err)
  fi
  printf '%-42s %-24s rc=%s %s\n' "$caps" "$*" "$rc" "$res"
}
for caps in none +sys_admin +sys_ptrace +dac_read_search +net_admin \
    +sys_admin,+sys_ptrace +sys_admin,+dac_read_search +sys_admin,+net_admin \
    +sys_admin,+sys_ptrace,+net_admin +sys_admin,+sys_ptrace,+dac_read_search; do
  run "$caps" --netns sqcap-named
  run "$caps" --netns-pid "$P"
done
