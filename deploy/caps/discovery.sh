#!/bin/sh
# The capability experiment of docs/deploy.md, step 4 (root, after setup.sh): what discovery of
# every namespace (collect::netns_all, the code behind --all-netns) finds as uid 65534 with
# each capability set, using the example `netns_discovery` (cargo build --example
# netns_discovery). Prints the setup.sh namespaces found, the count, and the blind-spot line.
#   discovery.sh PATH-TO-netns_discovery
ex=${1:?usage: discovery.sh PATH-TO-netns_discovery}
for caps in root none +sys_ptrace +dac_read_search +sys_admin +sys_ptrace,+dac_read_search; do
  echo "== $caps"
  if [ "$caps" = root ]; then
    out=$("$ex")
  else
    c=-all; [ "$caps" != none ] && c="-all,$caps"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=$c --ambient-caps=$c --bounding-set=$c "$ex")
  fi
  printf '%s\n' "$out" | grep -E 'sqcap|python3\[' | cut -c1-100
  printf '%s\n' "$out" | grep -c '^net:' | sed 's/$/ namespaces/'
  printf '%s\n' "$out" | grep '^not seen' | cut -c1-260
done
