#!/bin/sh
# The capability experiment of docs/deploy.md, step 3 (root, after setup.sh): how a non-root
# container process could get the capabilities, as a runtime starts it.
#   fcaps.sh BIN
bin=${1:?usage: fcaps.sh PATH-TO-SOCKQ}
DIR=${DIR:-/tmp/sockq-caps}
here=$(cd "$(dirname "$0")" && pwd)
P=$(cat "$DIR/unshared.pid")
B=-all,+sys_admin,+sys_ptrace,+dac_read_search
cp "$bin" "$DIR/sockq-fcaps"
setcap cap_sys_admin,cap_sys_ptrace,cap_dac_read_search=ep "$DIR/sockq-fcaps"
getcap "$DIR/sockq-fcaps"
show() { grep -E '^127|error|failed' || true; }
echo "== A: uid 65534, the three in the bounding set, none ambient (a runtime's non-root process), plain binary"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=$B "$bin" snapshot --netns-pid "$P" 2>&1 | show
echo "== B: the same, binary with file capabilities =ep"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=$B "$DIR/sockq-fcaps" snapshot --netns-pid "$P" 2>&1 | show
echo "== C: file capabilities, empty permitted set before exec, no_new_privs (allowPrivilegeEscalation: false)"
/usr/bin/python3 "$here/dropexec.py" nnp "$DIR/sockq-fcaps" snapshot --netns-pid "$P" 2>&1 | show
echo "== D: file capabilities, CAP_SYS_ADMIN not in the bounding set (not granted), uid 65534"
setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --bounding-set=-all,+sys_ptrace,+dac_read_search "$DIR/sockq-fcaps" --version 2>&1 | show
echo "== D': the same as uid 0"
setpriv --inh-caps=-all --bounding-set=-all,+sys_ptrace,+dac_read_search "$DIR/sockq-fcaps" --version 2>&1 | show
echo "== E: uid 0 with only the three (the DaemonSet: runAsUser 0, drop ALL, add three), plain binary"
setpriv --inh-caps=-all --bounding-set=$B "$bin" snapshot --netns-pid "$P" 2>&1 | show
setpriv --inh-caps=-all --bounding-set=$B grep CapEff /proc/self/status
