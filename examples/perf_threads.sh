#!/bin/bash
# CPU by thread of `sockq watch --interval 1s` (VIEW `watch`, the default) or of the dashboard
# (VIEW `dash`: `sockq --interval 1s` in a detached 200x50 tmux) at 10,000 quiet listeners
# (issue 16), for comparing two builds in the same window: run as root, alternating the
# binaries, e.g.
#   for b in OLD NEW OLD NEW OLD NEW; do unshare -n examples/perf_threads.sh $b 20; done
#   for b in OLD NEW OLD NEW; do unshare -n examples/perf_threads.sh $b 20 cpu dash; done
# Usage: perf_threads.sh BIN [SECS] [cpu|perf] [watch|dash] [sockq arguments...]
# The scene is perf_steady's "one": 10,000 listeners on 127.1.x.y:8080 held by one python
# process, 10 of them with 3 clients waiting. Prints the whole process's utime+stime over SECS
# seconds (after a 5 s warm-up) as % of a core, then each thread's clock ticks (1/100 s). With
# `perf` as the third argument it records a profile (perf.data in the current directory, at
# PERF_HZ samples a second, default 2999) instead.
set -eu
BIN=$1; SECS=${2:-20}; MODE=${3:-cpu}; VIEW=${4:-watch}; shift $(( $# < 4 ? $# : 4 ))
DIR=$(mktemp -d)
SOCK=sockq-perf-$$
cleanup() {
    tmux -L "$SOCK" kill-server 2>/dev/null || true
    [ -n "${WP:-}" ] && [ "$VIEW" = watch ] && kill "$WP" 2>/dev/null || true
    [ -n "${HP:-}" ] && kill "$HP" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT
ip link set lo up
: > "$DIR/hold.out"
python3 - 600 > "$DIR/hold.out" <<'PY' &
import socket, resource, time, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (11024, 11024))
addr = lambda i: (f"127.1.{(i + 1) // 250}.{(i + 1) % 250 + 1}", 8080)
socks = []
for i in range(10000):
    s = socket.socket(); s.bind(addr(i)); s.listen(128); socks.append(s)
clients = [socket.create_connection(addr(i)) for i in range(10) for _ in range(3)]
print("ready", flush=True)
time.sleep(int(sys.argv[1]))
PY
HP=$!
while ! grep -q ready "$DIR/hold.out"; do sleep 0.5; done
if [ "$VIEW" = dash ]; then
    tmux -L "$SOCK" -f /dev/null new-session -d -x 200 -y 50 "exec $BIN --interval 1s $*"
    WP=$(tmux -L "$SOCK" list-panes -F '#{pane_pid}')
else
    "$BIN" watch --interval 1s "$@" > /dev/null 2>&1 &
    WP=$!
fi
sleep 5
ticks() { awk '{print $14+$15}' "$1"; }
if [ "$MODE" = perf ]; then
    perf record -F "${PERF_HZ:-2999}" -g --call-graph dwarf,16384 -p "$WP" -o perf.data -- sleep "$SECS"
else
    declare -A T0
    for t in /proc/$WP/task/*; do T0[$t]=$(ticks $t/stat); done
    c0=$(ticks /proc/$WP/stat)
    sleep "$SECS"
    c1=$(ticks /proc/$WP/stat)
    echo "$BIN ($VIEW): $(echo "scale=2; ($c1-$c0)/$SECS" | bc) % of a core over $SECS s; load $(cut -d' ' -f1-3 /proc/loadavg)"
    for t in /proc/$WP/task/*; do echo "  $(cat $t/comm) $(( $(ticks $t/stat) - ${T0[$t]:-0} ))"; done
fi
