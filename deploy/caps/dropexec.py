#!/usr/bin/python3
# As root: drop to uid 65534 with an EMPTY permitted set (no keep-caps), optionally set
# no_new_privs, print the capability sets, exec argv. Shows whether file capabilities alone
# give the caps at exec, with and without no_new_privs.
import ctypes, os, sys
nnp = sys.argv[1] == "nnp"
libc = ctypes.CDLL(None, use_errno=True)
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
if nnp and libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("prctl failed")
caps = [l.strip() for l in open("/proc/self/status") if l.startswith(("CapPrm", "CapEff", "CapBnd", "NoNewPrivs"))]
print("before exec:", ", ".join(caps), flush=True)
os.execv(sys.argv[2], sys.argv[2:])
