#!/usr/bin/env python3
"""The cost of `sockq watch --all-netns` against `ss -ltn` in every namespace (docs/perf.md).

Root. Makes N namespaces (`ip netns add sockq-perf-<pid>-I`), each with lo up and 5 TCP
listeners on 127.0.0.1 held by a python3 process of its own in the namespace (as a container's
server; with --one-holder, all held by this process instead: sockets made after setns), starts
`sockq watch --all-netns` (stdout to /dev/null), waits WARMUP seconds, then for SECONDS seconds
runs `nsenter --net=/run/netns/NS ss -ltn` in every namespace once a second, in the same window.
Prints the whole sockq process's CPU (utime+stime from /proc/PID/stat, all its threads) and the
CPU of every nsenter+ss child (RUSAGE_CHILDREN), both in % of one core, their ratio, and
sockq's RSS and threads. Deletes every namespace it made, also on failure.

    sudo python3 examples/all_netns_perf.py N [SECONDS] [SOCKQ] [--one-holder] [sockq flags...]
"""

import ctypes
import json
import os
import resource
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)


HOLDER = """
import socket, sys, time
socks = []
for port in range(8000, 8005):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen(64)
    socks.append(s)
print("ready", flush=True)
time.sleep(3600)
"""


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split()[1]
    return "?"


def attribute(path, prefix, w0, w1):
    """CPU seconds of sockq's sampling thread spent on our namespaces and on the others, from
    each tick's collector.cpu_percent (its share since that namespace's previous sample) times
    the time since that previous sample, for ticks inside the window."""
    last = {}
    ours = others = 0.0
    names = set()
    with open(path) as f:
        for line in f:
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("event") != "tick":
                continue
            label = d["label"]
            t = d["tick"]["snapshot"]["time"]["wall_unix_ms"]
            prev = last.get(label)
            last[label] = t
            if prev is None or not (w0 <= t <= w1):
                continue
            cpu = d["tick"]["collector"]["cpu_percent"] / 100 * (t - prev) / 1000
            if label.startswith(prefix):
                ours += cpu
            else:
                others += cpu
                names.add(label)
    return ours, others, len(names)


def main():
    n = int(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    sockq = sys.argv[3] if len(sys.argv) > 3 else "target/release/sockq"
    extra = sys.argv[4:]
    one_holder = "--one-holder" in extra
    extra = [a for a in extra if a != "--one-holder"]
    holders = []
    warmup = 15.0
    prefix = f"sockq-perf-{os.getpid()}-"
    names = [f"{prefix}{i}" for i in range(n)]
    made = []
    socks = []
    watch = None
    host = "/proc/self/ns/net"
    host_fd = os.open(host, os.O_RDONLY)
    try:
        for name in names:
            made.append(name)
            subprocess.run(["ip", "netns", "add", name], check=True)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
            if one_holder:
                setns(f"/run/netns/{name}")
                for port in range(8000, 8005):
                    s = socket.socket()
                    s.bind(("127.0.0.1", port))
                    s.listen(64)
                    socks.append(s)
                if LIBC.setns(host_fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
            else:
                # a server process of its own in the namespace, as in a container
                p = subprocess.Popen(
                    ["nsenter", f"--net=/run/netns/{name}", "python3", "-c", HOLDER],
                    stdout=subprocess.PIPE,
                    stdin=subprocess.DEVNULL,
                )
                if p.stdout.readline().strip() != b"ready":
                    raise RuntimeError(f"holder in {name} did not start")
                holders.append(p)
        found = len(subprocess.run(["lsns", "-t", "net", "-n", "-o", "NS"], capture_output=True,
                                   text=True).stdout.split())
        named = len(subprocess.run(["ip", "netns", "list"], capture_output=True,
                                   text=True).stdout.splitlines())
        lines = open(f"/tmp/{prefix}watch.jsonl", "w+")
        watch = subprocess.Popen(
            [sockq, "watch", "--all-netns", "--json", *extra],
            stdout=lines,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(warmup)
        w0 = time.time() * 1000
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu0 = proc_cpu_s(watch.pid)
        t0 = time.monotonic()
        rounds = 0
        while time.monotonic() - t0 < seconds:
            start = time.monotonic()
            for name in names:
                subprocess.run(
                    ["nsenter", f"--net=/run/netns/{name}", "ss", "-ltn"],
                    stdout=subprocess.DEVNULL,
                    check=True,
                )
            rounds += 1
            left = 1.0 - (time.monotonic() - start)
            if left > 0:
                time.sleep(left)
        wall = time.monotonic() - t0
        cpu1 = proc_cpu_s(watch.pid)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        rss = proc_status(watch.pid, "VmRSS")
        threads = proc_status(watch.pid, "Threads")
        w1 = time.time() * 1000
        ours_s, others_s, others = attribute(f"/tmp/{prefix}watch.jsonl", prefix, w0, w1)
        ss_cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        sockq_pct = (cpu1 - cpu0) / wall * 100
        ss_pct = ss_cpu / wall * 100
        print(
            f"namespaces={n} listeners={5 * n} others_by_lsns={found - n} ip_netns={named} "
            f"window_s={wall:.1f} ss_rounds={rounds} "
            f"sockq_cpu_pct={sockq_pct:.2f} ss_cpu_pct={ss_pct:.2f} "
            f"ratio={sockq_pct / ss_pct if ss_pct else float('nan'):.3f} "
            f"sockq_rss_kb={rss} sockq_threads={threads} "
            f"sampling_ours_pct={ours_s / wall * 100:.2f} "
            f"sampling_others_pct={others_s / wall * 100:.2f} others_sampled={others} "
            f"load={os.getloadavg()[0]:.2f}"
        )
    finally:
        if watch is not None:
            watch.terminate()
            watch.wait()
        for s in socks:
            s.close()
        for p in holders:
            p.kill()
            p.wait()
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], stderr=subprocess.DEVNULL)
        if os.path.exists(f"/tmp/{prefix}watch.jsonl"):
            os.unlink(f"/tmp/{prefix}watch.jsonl")


if __name__ == "__main__":
    main()
