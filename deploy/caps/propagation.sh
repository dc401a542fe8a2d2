#!/bin/sh
# The mount-propagation check of docs/deploy.md (root): discovery in a mount namespace made
# BEFORE `ip netns add sqcap-late`, with slave propagation (Kubernetes' HostToContainer,
# rslave) and with private propagation (a hostPath mount's default, None).
#   propagation.sh PATH-TO-netns_discovery
ex=${1:?usage: propagation.sh PATH-TO-netns_discovery}
for pr in slave private; do
  ip netns del sqcap-late 2>/dev/null
  unshare --mount --propagation $pr sh -c "sleep 2; echo '== propagation $pr: sqcap-late found?'; '$ex' | grep -c sqcap-late" &
  sleep 1
  ip netns add sqcap-late
  wait
done
ip netns del sqcap-late
