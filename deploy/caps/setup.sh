#!/bin/sh
# The capability experiment of docs/deploy.md, step 1 (root): two network namespaces, each with
# a root-owned TCP listener on 127.0.0.1 with backlog 2 and 3 connections waiting (never
# accepted):
#   sqcap-named           made by `ip netns add`, listener on port 7001
#   held by a process     `unshare --net`, listener on port 7002 (its pid in $DIR/unshared.pid)
# Then: matrix.sh (step 2), teardown.sh.
set -e
DIR=${DIR:-/tmp/sockq-caps}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"
chmod 755 "$DIR"
cp "$here/listener.py" "$DIR/"
ip netns add sqcap-named
ip netns exec sqcap-named ip link set lo up
setsid ip netns exec sqcap-named /usr/bin/python3 "$DIR/listener.py" 7001 </dev/null >/dev/null 2>&1 &
echo $! > "$DIR/named.pid"
setsid unshare --net sh -c "ip link set lo up; exec /usr/bin/python3 $DIR/listener.py 7002" </dev/null >/dev/null 2>&1 &
echo $! > "$DIR/unshared.pid"
sleep 1
ip netns exec sqcap-named ss -ltn
nsenter --net="/proc/$(cat "$DIR/unshared.pid")/ns/net" ss -ltn
