#!/usr/bin/python3
# The capability experiment of docs/deploy.md: a TCP listener with backlog 2 and 3 connections
# waiting in its accept queue; it never accepts.
import socket, sys, time
port = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(2)
cs = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", port))
    except BlockingIOError: pass
    cs.append(c)
time.sleep(3600)
