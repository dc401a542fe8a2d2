#!/usr/bin/env python3
"""Writes fuzz/seeds/<target>/ from the captured fixtures (tests/fixtures). Run from fuzz/.

`make_seeds.py REC` also writes record_reader's seeds from REC, a recording made with
`sockq record REC --count 3`: its samples are cut down to a few counters (a sample of a fresh
namespace is 4 KB, mostly counters) so that a seed fits record_reader's -max_len."""
import gzip
import json
import os
import struct
import sys

FIX = "../tests/fixtures"
SEEDS = "seeds"


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def messages(dgram):
    off = 0
    while off + 16 <= len(dgram):
        length, kind = struct.unpack_from("=IH", dgram, off)
        if length < 16 or off + length > len(dgram):
            break
        yield kind, dgram[off : off + length]
        off += (length + 3) & ~3


nl = os.path.join(FIX, "netlink")
for name in sorted(os.listdir(nl)):
    if not name.endswith(".bin"):
        continue
    dgram = open(os.path.join(nl, name), "rb").read()
    stem = name[:-4]
    msgs = list(messages(dgram))
    if len(dgram) > 4096:
        # Keep the first messages whole, under libFuzzer's default size cap.
        head = b""
        for _, m in msgs:
            if len(head) + len(m) > 4096:
                break
            head += m + b"\0" * (-len(m) % 4)
        dgram = head
    put("netlink_datagram", stem, dgram)
    # Up to three distinct payloads of each dump for the decoders.
    seen = set()
    for kind, m in msgs:
        if kind == 20 and len(seen) < 3 and m[16:] not in seen:
            seen.add(m[16:])
            put("diag_decode", f"{stem}-{len(seen)}", m[16:])

proc = os.path.join(FIX, "proc")
for kernel in sorted(os.listdir(proc)):
    d = os.path.join(proc, kernel)
    files = {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d)}
    if "netstat" in files:
        put("procnet", kernel, files["netstat"] + b"\0" + files.get("snmp", b""))
    if "netstat-values" in files:
        put("procnet", kernel + "-values", files["netstat-values"] + b"\0" + files.get("snmp", b""))

for i, text in enumerate([b"4096\n", b"-1\n", b"9223372036854775807\n", b"0", b" 1 \n"]):
    put("tunables", f"sysctl-{i}", text)

own = os.path.join(FIX, "owners")
for name in sorted(os.listdir(own)):
    if name != "README.md":
        put("owners_parse", name, open(os.path.join(own, name), "rb").read())
for i, link in enumerate([b"socket:[12345]", b"net:[4026531840]", b"pipe:[42]", b"4194304"]):
    put("owners_parse", f"link-{i}", link)

if len(sys.argv) > 1:
    lines = gzip.open(sys.argv[1]).read().decode().splitlines()
    keep_ext = {"ListenOverflows", "ListenDrops", "TCPReqQFullDrop", "SyncookiesSent"}
    keep_tcp = {"MaxConn", "ActiveOpens", "CurrEstab"}
    out = [lines[0]]
    for line in lines[1:]:
        s = json.loads(line)
        c = s["snapshot"]["counters"]
        c["tcp_ext"] = {k: v for k, v in c["tcp_ext"].items() if k in keep_ext}
        c["tcp"] = {k: v for k, v in c["tcp"].items() if k in keep_tcp}
        out.append(json.dumps(s, separators=(",", ":")))
    # The first byte is the target's mode: 1, the text to write as gzip members; 0, the file.
    for n in (1, len(out) - 1):
        text = ("\n".join(out[: n + 1]) + "\n").encode()
        put("record_reader", f"text-{n}-samples", b"\x01" + text)
        members = b"".join(gzip.compress(l + b"\n", mtime=0) for l in text.splitlines())
        put("record_reader", f"raw-{n}-samples", b"\x00" + members)
