#!/bin/sh
# The capability experiment of docs/deploy.md, step 5 (root, after setup.sh): `snapshot --json`
# of both namespaces as uid 65534 with the three capabilities (and with CAP_NET_ADMIN added)
# against root's, times and ages removed, and sockstat's alloc, orphan and mem_pages (counts of
# the whole machine's TCP sockets: they move between two runs): identical means nothing is
# missing.
#   sameasroot.sh PATH-TO-SOCKQ
bin=${1:?usage: sameasroot.sh PATH-TO-SOCKQ}
DIR=${DIR:-/tmp/sockq-caps}
P=$(cat "$DIR/unshared.pid")
strip='del(.time, .sockstat.alloc, .sockstat.orphan, .sockstat.mem_pages) | walk(if type=="object" then del(.age_ms, .cpu_percent, .state, .dumped_monotonic_ns, .waiting_oldest_ms) else . end)'
for target in "--netns sqcap-named" "--netns-pid $P"; do
  # shellcheck disable=SC2086
  "$bin" snapshot --json $target | jq -S "$strip" > "$DIR/root.json"
  for c in -all,+sys_admin,+sys_ptrace,+dac_read_search -all,+sys_admin,+sys_ptrace,+dac_read_search,+net_admin; do
    # shellcheck disable=SC2086
    setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=$c --ambient-caps=$c --bounding-set=$c \
      "$bin" snapshot --json $target | jq -S "$strip" > "$DIR/caps.json"
    if cmp -s "$DIR/root.json" "$DIR/caps.json"; then r="identical to root's"; else r="DIFFERS from root's"; fi
    echo "$target $c: $(wc -l < "$DIR/caps.json") lines of JSON, $r"
  done
done
