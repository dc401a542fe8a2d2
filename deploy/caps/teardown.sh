#!/bin/sh
# Undoes setup.sh.
DIR=${DIR:-/tmp/sockq-caps}
for f in named.pid unshared.pid; do
  [ -f "$DIR/$f" ] && kill "$(cat "$DIR/$f")" 2>/dev/null
done
ip netns del sqcap-named 2>/dev/null
rm -rf "$DIR"
