#!/usr/bin/env python3
"""Runs sim/tests/ftplib_all.py (every command of issue 2 through Python's
ftplib, each reply checked) against a board instead of the host server.

Usage: ftplib_board.py FTPLIB_ALL.PY HOST PORT BIG_BYTES

ftplib_all.py is written for the host server on 127.0.0.1. Three of its
assumptions do not hold for a board on TAP (192.0.2.2, the client at
192.0.2.1), and one costs minutes on QEMU; they are adjusted here, each
replacement checked to apply exactly once (so a change to the script fails
loudly instead of silently testing something else):

- PASV must advertise the address the client connected to (127.0.0.1 for
  the host server and QEMU's user networking, 192.0.2.2 on TAP);
- EPRT toward our own address: the client's address on the control
  connection, not 127.0.0.1;
- the file that ABOR interrupts: BIG_BYTES instead of 12 MiB (QEMU stores a
  few hundred kB/s).

Everything else runs unchanged, on FAT ("fat" mode: names FAT cannot hold
get 553).
"""

import sys

script_path, host, port, big = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
source = open(script_path, encoding="utf-8").read()

REPLACEMENTS = [
    # PASV advertises the address we connected to.
    ("nums[:4] == [127, 0, 0, 1]", "nums[:4] == [int(x) for x in HOST.split('.')]"),
    # EPRT toward our own address: listen where the control connection comes from.
    ('lsock = socket.create_server(("127.0.0.1", 0))', "lsock = socket.create_server((ftp.sock.getsockname()[0], 0))"),
    ('f"EPRT |1|127.0.0.1|{lport}|", "200")', 'f"EPRT |1|{ftp.sock.getsockname()[0]}|{lport}|", "200")'),
    # The file ABOR interrupts.
    ("big = pattern(12 * 1024 * 1024, 7)", f"big = pattern({big}, 7)"),
]
for old, new in REPLACEMENTS:
    n = source.count(old)
    if n != 1:
        sys.exit(f"ftplib_board.py: expected `{old}` exactly once in {script_path}, found it {n} times: update the replacements")
    source = source.replace(old, new)

sys.argv = [script_path, host, port, "fat"]
exec(compile(source, script_path, "exec"), {"__name__": "__main__", "__file__": script_path})
