#!/usr/bin/env python3
"""Every command of issue 2 through Python's ftplib, each reply checked.

Usage: ftplib_all.py HOST PORT [dir|fat]

The third argument names the storage behind the server: on FAT a name with
`"` cannot exist (553 is the right answer to creating one), so the 257
quote-doubling check needs a host directory.

Expects a server with the default accounts (test/test read-write,
anonymous read-only) over an empty (or at least /ftplib-free) tree, and
default settings (login failure answered after a delay).
Prints one line per check ("ok   NAME" or "FAIL NAME: detail"), and at the
end exits 0 when every check passed, 1 otherwise, naming the failed checks.

Leaves /ftplib/keep/ behind with files whose bytes the caller can check on
the storage itself (see the Rust test `ftplib_all` in clients.rs).
"""

import ftplib
import io
import re
import socket
import sys
import time
import traceback

HOST = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 2121
FAT = (sys.argv[3] if len(sys.argv) > 3 else "dir") == "fat"
TIMEOUT = 20

failed = []
checks = 0


def check(name, cond, detail=""):
    """Records and prints one check."""
    global checks
    checks += 1
    if cond:
        print(f"ok   {name}", flush=True)
    else:
        failed.append(name)
        print(f"FAIL {name}: {detail}", flush=True)
    return cond


def pattern(n, k=1):
    """Deterministic bytes (the Rust side computes the same)."""
    return bytes(((i * 31 + (i >> 8) + k) & 0xFF) for i in range(n))


def connect():
    ftp = TextFTP()
    ftp.encoding = "utf-8"
    ftp.connect(HOST, PORT, timeout=TIMEOUT)
    return ftp


def login(ftp, user="test", password="test"):
    return ftp.login(user, password)


def raw(ftp, line):
    """Sends one command line, returns the whole reply text (no exception on 4xx/5xx)."""
    ftp.putcmd(line)
    resp = ftp.getmultiline()
    # Every reply line carries text after its code (clients.md section 13.1).
    first = resp.split("\n")[0]
    if not re.match(r"^\d{3}[ -]\S", first):
        check(f"reply to {line!r} has text", False, repr(resp))
    return resp


def expect(name, ftp, line, codes, text_re=None):
    """Sends `line`; checks the reply code is one of `codes` (and the text matches)."""
    if isinstance(codes, str):
        codes = (codes,)
    try:
        resp = raw(ftp, line)
    except Exception as e:  # noqa: BLE001 - reported as a failed check
        check(name, False, f"{line!r}: {e!r}")
        return ""
    ok = resp[:3] in codes and (text_re is None or re.search(text_re, resp, re.S) is not None)
    check(name, ok, f"{line!r} -> {resp!r}, expected {'/'.join(codes)}" + (f" matching {text_re!r}" if text_re else ""))
    return resp


def transfer(ftp, cmd, data=None, rest=None):
    """A data transfer by hand over PASV (or PORT when passive mode is off, or
    EPSV when ftp.af is IPv6): returns (preliminary reply, received bytes,
    final reply). Sends `data` when given (upload), otherwise receives."""
    ftp.last_prelim = ""
    conn, _size = ftp.ntransfercmd(cmd, rest)
    prelim = ftp.last_prelim
    got = b""
    with conn:
        conn.settimeout(TIMEOUT)
        if data is None:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
        else:
            conn.sendall(data)
    final = ftp.getmultiline()
    return prelim, got, final


class TextFTP(ftplib.FTP):
    """ftplib.FTP that keeps the whole text of the last 1xx reply (ntransfercmd
    keeps only its code)."""

    last_prelim = ""

    def getresp(self):
        resp = super().getresp()
        if resp[:1] == "1":
            self.last_prelim = resp
        return resp


def retr(ftp, path, rest=None):
    ftp.voidcmd("TYPE I")
    _, got, final = transfer(ftp, f"RETR {path}", rest=rest)
    if not final.startswith("226"):
        raise ftplib.error_reply(final)
    return got


def stor(ftp, path, data, cmd="STOR", rest=None):
    ftp.voidcmd("TYPE I")
    return ftp.storbinary(f"{cmd} {path}", io.BytesIO(data), rest=rest)


def section(fn):
    """Runs one group of checks; an unexpected exception fails the group, not the script."""
    name = fn.__name__
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        check(f"{name} ran to the end", False, repr(e))
    return fn


# ---------------------------------------------------------------------------


def before_login():
    ftp = connect()
    check("greeting is 220", ftp.welcome.startswith("220 ") or ftp.welcome.startswith("220-"), ftp.welcome)
    feat = expect("FEAT before login", ftp, "FEAT", "211")
    lines = feat.split("\n")
    check("FEAT first line 211-", lines[0].startswith("211-"), repr(lines[0]))
    check("FEAT last line '211 End'", lines[-1].startswith("211 ") , repr(lines[-1]))
    body = lines[1:-1]
    check("FEAT feature lines start with one space", all(l.startswith(" ") and not l.startswith("  ") for l in body), repr(body))
    feats = {l.strip().split(" ")[0].upper(): l.strip() for l in body}
    for f in ("UTF8", "SIZE", "MDTM", "REST", "EPSV", "MLST"):
        check(f"FEAT lists {f}", f in feats, repr(body))
    check("FEAT REST STREAM", feats.get("REST", "").upper() == "REST STREAM", repr(feats.get("REST")))
    mlst = feats.get("MLST", "")
    for fact in ("type", "size", "modify", "perm"):
        check(f"FEAT MLST offers {fact}", re.search(rf"\b{fact}\*?;", mlst, re.I) is not None, mlst)
    check("FEAT does not advertise MODE Z or AUTH", "MODE" not in feats and "AUTH" not in feats, repr(body))
    expect("PWD before login is 530", ftp, "PWD", "530")
    expect("RETR before login is 530", ftp, "RETR x", "530")
    expect("MKD before login is 530", ftp, "MKD x", "530")
    expect("PASS without USER is 503", ftp, "PASS test", "503")
    expect("RNTO without RNFR (before login) is 503 or 530", ftp, "RNTO x", ("503", "530"))
    expect("SYST before login", ftp, "SYST", ("215", "530"))
    expect("NOOP before login", ftp, "NOOP", ("200", "530"))
    expect("USER test is 331", ftp, "USER test", "331")
    t0 = time.monotonic()
    expect("wrong PASS is 530", ftp, "PASS wrong", "530")
    delay = time.monotonic() - t0
    check("failed login answered after a delay (>= 0.5 s)", delay >= 0.5, f"{delay:.3f} s")
    expect("session goes on after a failed login", ftp, "NOOP", ("200", "530"))
    expect("USER test again", ftp, "USER test", "331")
    expect("PASS test is 230", ftp, "PASS test", "230")
    expect("ACCT after login is 202 (superfluous) or 230", ftp, "ACCT none", ("202", "230"))
    expect("QUIT is 221", ftp, "QUIT", "221")
    try:
        more = ftp.sock.recv(1)
    except OSError:
        more = b""
    check("server closes after QUIT", more == b"", repr(more))
    ftp.close()

    # ftplib's own login()
    ftp = connect()
    check("ftplib login() 230", login(ftp).startswith("230"))
    check("ftplib quit() 221", ftp.quit().startswith("221"))


def basics():
    ftp = connect()
    login(ftp)
    expect("SYST is 215 UNIX Type: L8", ftp, "SYST", "215", r"^215 UNIX Type: L8")
    expect("NOOP is 200", ftp, "NOOP", "200")
    expect("PWD is 257 \"/\"", ftp, "PWD", "257", r'^257 "/"( |$)')
    expect("XPWD is 257 \"/\"", ftp, "XPWD", "257", r'^257 "/"( |$)')
    expect("CLNT is accepted", ftp, "CLNT Python ftplib", "200")
    expect("OPTS UTF8 ON is 200", ftp, "OPTS UTF8 ON", "200")
    expect("OPTS of an unknown option is 501", ftp, "OPTS NOSUCH ON", ("501", "500"))
    expect("unknown command is 500/502", ftp, "XYZZY", ("500", "502"))
    expect("session goes on after an unknown command", ftp, "NOOP", "200")
    expect("over-long command line is 500", ftp, "NOOP " + "x" * 5000, "500")
    expect("session goes on after an over-long line", ftp, "NOOP", "200")
    expect("HELP is 214", ftp, "HELP", "214")
    expect("HELP CMD is 214", ftp, "HELP RETR", "214")
    expect("SITE HELP is 214 or 200", ftp, "SITE HELP", ("214", "200"))
    expect("SITE unknown is 500/502/504", ftp, "SITE NOSUCH", ("500", "502", "504"))
    expect("STAT (bare) is 211", ftp, "STAT", "211", r"^211-.*\n211 ")
    for t, name in (("A", "A"), ("I", "I"), ("L 8", "L 8"), ("A N", "A N"), ("A T", "A T")):
        expect(f"TYPE {name} is 200", ftp, f"TYPE {t}", "200")
    expect("TYPE E is 504", ftp, "TYPE E", "504")
    expect("TYPE L 7 is 504", ftp, "TYPE L 7", "504")
    expect("TYPE A C (carriage control) is 504", ftp, "TYPE A C", "504")
    expect("TYPE nonsense is 501/504", ftp, "TYPE Q", ("501", "504"))
    expect("STRU F is 200", ftp, "STRU F", "200")
    expect("STRU R is 504", ftp, "STRU R", "504")
    expect("MODE S is 200", ftp, "MODE S", "200")
    expect("MODE B is 504", ftp, "MODE B", "504")
    expect("MODE Z is 504", ftp, "MODE Z", ("504", "502"))
    expect("ALLO is 200/202", ftp, "ALLO 1000", ("200", "202"))
    expect("ABOR with no transfer is 225/226", ftp, "ABOR", ("225", "226"))
    check("ftplib quit() 221", ftp.quit().startswith("221"))


def directories():
    ftp = connect()
    login(ftp)
    expect("MKD /ftplib is 257 with the path", ftp, "MKD /ftplib", "257", r'^257 "/ftplib"')
    expect("MKD of an existing directory is 550", ftp, "MKD /ftplib", ("550", "521"))
    expect("CWD /ftplib is 250", ftp, "CWD /ftplib", "250")
    expect("PWD after CWD", ftp, "PWD", "257", r'^257 "/ftplib"')
    if FAT:
        expect("MKD of a name FAT cannot hold is 553", ftp, 'MKD say "hi"', "553")
        expect("MKD of a name with '*' on FAT is 553", ftp, "MKD a*b", "553")
    else:
        resp = expect("MKD with a quote in the name", ftp, 'MKD say "hi"', "257", r'^257 "/ftplib/say ""hi"""( |$)')
        check("ftplib parse257 undoes the quote doubling", ftplib.parse257(resp) == '/ftplib/say "hi"', repr(resp))
        expect("CWD into it", ftp, 'CWD say "hi"', "250")
        expect("PWD doubles the quotes", ftp, "PWD", "257", r'^257 "/ftplib/say ""hi"""( |$)')
        expect("CDUP out of it", ftp, "CDUP", ("200", "250"))
    check("ftplib mkd()", ftp.mkd("sub") == "/ftplib/sub")
    expect("XMKD is 257", ftp, "XMKD xsub", "257", r'^257 "/ftplib/xsub"')
    expect("XCWD is 250", ftp, "XCWD xsub", "250")
    expect("XPWD in xsub", ftp, "XPWD", "257", r'^257 "/ftplib/xsub"')
    expect("XCUP is 200/250", ftp, "XCUP", ("200", "250"))
    expect("PWD after XCUP", ftp, "PWD", "257", r'^257 "/ftplib"')
    expect("CWD sub/ (trailing slash)", ftp, "CWD sub/", "250")
    expect("CDUP is 200/250", ftp, "CDUP", ("200", "250"))
    expect("CWD ..", ftp, "CWD ..", "250")
    expect("PWD at / after CWD ..", ftp, "PWD", "257", r'^257 "/"( |$)')
    expect("CDUP at the root", ftp, "CDUP", ("200", "250"))
    expect("PWD stays / after CDUP at the root", ftp, "PWD", "257", r'^257 "/"( |$)')
    expect("CWD ../../.. at the root", ftp, "CWD ../../..", "250")
    expect("PWD stays / after CWD ../../..", ftp, "PWD", "257", r'^257 "/"( |$)')
    expect("CWD //ftplib//sub/./../sub/", ftp, "CWD //ftplib//sub/./../sub/", "250")
    expect("PWD after a messy path", ftp, "PWD", "257", r'^257 "/ftplib/sub"')
    expect("CWD to a missing directory is 550", ftp, "CWD /nope", "550")
    stor(ftp, "/ftplib/afile", b"abc")
    expect("CWD to a file is 550", ftp, "CWD /ftplib/afile", "550")
    expect("CWD /ftplib/", ftp, "CWD /ftplib/", "250")
    expect("RMD of a non-empty directory is 550", ftp, "RMD /ftplib", "550")
    expect("RMD of a missing directory is 550", ftp, "RMD nope", "550")
    expect("RMD of a file is 550", ftp, "RMD afile", "550")
    expect("RMD is 250", ftp, "RMD sub", "250")
    expect("XRMD is 250", ftp, "XRMD xsub", "250")
    if not FAT:
        check("ftplib rmd()", ftp.rmd('say "hi"').startswith("250"))
    expect("DELE of a directory-less file", ftp, "DELE afile", "250")
    names = ftp.nlst()
    check("directory empty after RMD/DELE", names == [], repr(names))
    ftp.quit()


def files():
    ftp = connect()
    login(ftp)
    ftp.mkd("/ftplib/keep")
    ftp.cwd("/ftplib")
    data = pattern(300_000, 3)
    r = stor(ftp, "bin.dat", data)
    check("STOR final reply 226", r.startswith("226"), r)
    prelim, got, final = transfer(ftp, "RETR bin.dat")
    check("RETR preliminary 150", prelim.startswith("150"), prelim)
    check("RETR final 226", final.startswith("226"), final)
    check("RETR bytes equal STOR bytes", got == data, f"{len(got)} bytes")
    expect("SIZE is 213 digits only", ftp, "SIZE bin.dat", "213", r"^213 300000$")
    check("ftplib size()", ftp.size("bin.dat") == 300000)
    expect("SIZE of a missing file is 550", ftp, "SIZE nope", "550")
    expect("SIZE of a directory is 550", ftp, "SIZE /ftplib/keep", "550")
    resp = expect("MDTM is 213 YYYYMMDDHHMMSS", ftp, "MDTM bin.dat", "213", r"^213 \d{14}(\.\d+)?$")
    m = re.match(r"^213 (\d{14})", resp)
    if m:
        t = time.mktime(time.strptime(m.group(1), "%Y%m%d%H%M%S")) - time.mktime(time.gmtime(0))
        check("MDTM is the upload time in UTC (within a day)", abs(t - time.time()) < 86400, m.group(1))
    expect("MDTM of a missing file is 550", ftp, "MDTM nope", "550")
    expect("MDTM with a time to set is refused", ftp, "MDTM 20200101000000 bin.dat", ("501", "550", "500", "502", "504"))

    # REST + RETR
    expect("REST is 350", ftp, "REST 100", "350")
    expect("REST is reset by another command? (TYPE I)", ftp, "TYPE I", "200")
    got = retr(ftp, "bin.dat", rest=123_457)
    check("REST 123457 + RETR gives the tail", got == data[123_457:], f"{len(got)} bytes")
    got = retr(ftp, "bin.dat")
    check("RETR after a REST transfer starts at 0", got == data, f"{len(got)} bytes")
    expect("REST with a non-number is 501", ftp, "REST abc", ("501", "500"))
    # REST + STOR (resume an upload)
    whole = pattern(200_000, 4)
    stor(ftp, "keep/resumed.bin", whole[:77_777])
    r = stor(ftp, "keep/resumed.bin", whole[77_777:], rest=77_777)
    check("REST 77777 + STOR final reply 226", r.startswith("226"), r)
    check("REST + STOR resumed the upload", retr(ftp, "keep/resumed.bin") == whole)
    # APPE
    stor(ftp, "keep/appended.txt", b"first\n")
    r = stor(ftp, "keep/appended.txt", b"second\n", cmd="APPE")
    check("APPE final reply 226", r.startswith("226"), r)
    check("APPE appended", retr(ftp, "keep/appended.txt") == b"first\nsecond\n")
    r = stor(ftp, "keep/appe-new.txt", b"created by APPE\n", cmd="APPE")
    check("APPE creates a missing file", retr(ftp, "keep/appe-new.txt") == b"created by APPE\n", r)
    # STOU
    before = set(ftp.nlst())
    ftp.voidcmd("TYPE I")
    prelim, _, final = transfer(ftp, "STOU", data=b"unique contents\n")
    after = set(ftp.nlst())
    new = after - before
    check("STOU preliminary 150", prelim.startswith("150"), prelim)
    check("STOU final 226", final.startswith("226"), final)
    check("STOU made exactly one new file", len(new) == 1, repr(new))
    if len(new) == 1:
        name = new.pop()
        check("STOU reply names the file", name in prelim or name in final, f"{name!r} not in {prelim!r} / {final!r}")
        check("STOU file holds the bytes", retr(ftp, name) == b"unique contents\n")
        ftp.delete(name)
    # RETR errors
    expect("RETR of a missing file is 550", ftp, "RETR nope", ("550",))
    expect("RETR of a directory is 550", ftp, "RETR keep", ("550",))
    expect("session fine after RETR errors", ftp, "NOOP", "200")
    # STOR into a missing directory (the data connection is open, as clients do it)
    ftp.voidcmd("TYPE I")
    try:
        with ftp.transfercmd("STOR nodir/x"):
            pass
        check("STOR into a missing directory is 550/553", False, "accepted")
    except ftplib.error_perm as e:
        check("STOR into a missing directory is 550/553", str(e)[:3] in ("550", "553"), str(e))
    # DELE
    expect("DELE of a missing file is 550", ftp, "DELE nope", "550")
    check("ftplib delete()", ftp.delete("bin.dat").startswith("250"))
    check("deleted file gone", "bin.dat" not in ftp.nlst())
    # RNFR / RNTO
    stor(ftp, "old name.txt", b"rename me")
    expect("RNFR is 350", ftp, "RNFR old name.txt", "350")
    expect("RNTO is 250", ftp, "RNTO keep/Report 2026 (final).pdf", "250")
    check("renamed file has the bytes", retr(ftp, "keep/Report 2026 (final).pdf") == b"rename me")
    expect("RNTO without RNFR is 503", ftp, "RNTO whatever", "503")
    expect("RNFR of a missing file is 550", ftp, "RNFR nope", "550")
    expect("RNTO after a failed RNFR is 503", ftp, "RNTO whatever", "503")
    expect("RNFR then another command", ftp, "RNFR keep/appended.txt", "350")
    expect("(NOOP in between)", ftp, "NOOP", "200")
    expect("RNTO after an intervening command is 503", ftp, "RNTO x", "503")
    ftp.mkd("d1")
    stor(ftp, "d1/f", b"in d1")
    check("ftplib rename() of a directory", ftp.rename("d1", "keep/d2").startswith("250"))
    check("file moved with its directory", retr(ftp, "keep/d2/f") == b"in d1")
    # UTF-8 name
    stor(ftp, "keep/Grüße.txt", "Grüße\n".encode())
    check("UTF-8 name listed by NLST", "Grüße.txt" in ftp.nlst("keep"), repr(ftp.nlst("keep")))
    check("UTF-8 name retrieved", retr(ftp, "keep/Grüße.txt") == "Grüße\n".encode())
    # ALLO then STOR
    expect("ALLO before STOR", ftp, "ALLO 5", ("200", "202"))
    stor(ftp, "keep/firmware-v1.2.3.bin", pattern(70_000, 5))
    check("STOR after ALLO", retr(ftp, "keep/firmware-v1.2.3.bin") == pattern(70_000, 5))
    # jail
    expect("RETR outside the root is refused", ftp, "RETR ../../../../etc/passwd", ("550",))
    expect("SIZE outside the root", ftp, "SIZE /../../../etc/passwd", ("550",))
    ftp.quit()


def ascii_mode():
    ftp = connect()
    login(ftp)
    ftp.cwd("/ftplib/keep")
    ftp.voidcmd("TYPE A")
    _, _, final = transfer(ftp, "STOR ascii.txt", data=b"line one\r\nline two\r\n")
    check("TYPE A STOR 226", final.startswith("226"), final)
    check("TYPE A STOR stored LF line ends", retr(ftp, "ascii.txt") == b"line one\nline two\n")
    stor(ftp, "unix.txt", b"x\ny\n\nz\n")
    ftp.voidcmd("TYPE A")
    _, got, final = transfer(ftp, "RETR unix.txt")
    check("TYPE A RETR sends CRLF line ends", got == b"x\r\ny\r\n\r\nz\r\n", repr(got))
    lines = []
    ftp.retrlines("RETR unix.txt", lines.append)
    check("ftplib retrlines()", lines == ["x", "y", "", "z"], repr(lines))
    ftp.voidcmd("TYPE I")
    _, got, _ = transfer(ftp, "RETR unix.txt")
    check("TYPE I RETR is byte-exact", got == b"x\ny\n\nz\n", repr(got))
    ftp.storlines("STOR lines.txt", io.BytesIO(b"a\nb\n"))
    check("ftplib storlines() (TYPE A) stores LF", retr(ftp, "lines.txt") == b"a\nb\n")
    ftp.delete("unix.txt")
    ftp.delete("lines.txt")
    ftp.quit()


def listings():
    ftp = connect()
    login(ftp)
    ftp.mkd("/ftplib/ls")
    ftp.cwd("/ftplib/ls")
    stor(ftp, "f1.bin", b"12345")
    stor(ftp, "name with spaces.txt", b"")
    ftp.mkd("dir")
    lines = []
    r = ftp.retrlines("LIST", lines.append)
    check("LIST final 226", r.startswith("226"), r)
    lsre = re.compile(r"^([-d])[-rwx]{9}\s+\d+\s+\S+\s+\S+\s+(\d+)\s+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+(\d{2}:\d{2}|\d{4}) (.+)$")
    parsed = {}
    for l in lines:
        m = lsre.match(l)
        check(f"LIST line in ls -l form: {l!r}", m is not None, l)
        if m:
            parsed[m.group(5)] = (m.group(1), int(m.group(2)))
    check("LIST entries", {k: v[0] for k, v in parsed.items()} == {"f1.bin": "-", "name with spaces.txt": "-", "dir": "d"}, repr(parsed))
    check("LIST size", parsed.get("f1.bin", ("", 0))[1] == 5, repr(parsed))
    for opt in ("-a", "-l", "-la", "-al"):
        lines = []
        ftp.retrlines(f"LIST {opt}", lines.append)
        check(f"LIST {opt} ignored", sorted(l.split(" ")[-1] for l in lines) == sorted(["f1.bin", "spaces.txt", "dir"]), repr(lines))
    lines = []
    ftp.retrlines("LIST f1.bin", lines.append)
    check("LIST of a file gives its line", len(lines) == 1 and lines[0].endswith(" f1.bin"), repr(lines))
    lines = []
    ftp.retrlines("LIST /ftplib/ls/dir", lines.append)
    check("LIST of an empty directory", lines == [], repr(lines))
    expect("LIST of a missing path is 450/550", ftp, "LIST /nope", ("450", "550", "425"))
    names = ftp.nlst()
    check("NLST gives names only", sorted(names) == ["dir", "f1.bin", "name with spaces.txt"], repr(names))
    names = ftp.nlst("/ftplib/ls")
    check("NLST with a path", sorted(n.rsplit("/", 1)[-1] for n in names) == ["dir", "f1.bin", "name with spaces.txt"], repr(names))
    # MLSD
    raw_lines = []
    ftp.retrlines("MLSD", raw_lines.append)
    check("MLSD lines: facts end with ';' then one space", all(re.match(r"^(\w+=[^;]*;)+ \S", l) for l in raw_lines), repr(raw_lines))
    entries = {n: f for n, f in ftp.mlsd()}
    check("MLSD names", {n for n in entries if entries[n].get("type") in ("file", "dir")} == {"f1.bin", "name with spaces.txt", "dir"}, repr(entries))
    f1 = entries.get("f1.bin", {})
    check("MLSD file type=file", f1.get("type") == "file", repr(f1))
    check("MLSD file size=5", f1.get("size") == "5", repr(f1))
    check("MLSD modify is 14 digits", re.match(r"^\d{14}(\.\d+)?$", f1.get("modify", "")) is not None, repr(f1))
    check("MLSD perm on a writable file", set("r").issubset(set(f1.get("perm", ""))) and "w" in f1.get("perm", ""), repr(f1))
    check("MLSD dir type=dir", entries.get("dir", {}).get("type") == "dir", repr(entries.get("dir")))
    entries = {n: f for n, f in ftp.mlsd("/ftplib/ls/dir")}
    check("MLSD with a path", {n for n in entries if entries[n].get("type") in ("file", "dir")} == set(), repr(entries))
    # MLST
    resp = expect("MLST of a file is 250 multi-line", ftp, "MLST f1.bin", "250", r"^250-.*\n 250 End|^250-.*\n250 ")
    body = [l for l in resp.split("\n")[1:-1]]
    check("MLST fact line starts with a space, facts end with ';'", len(body) == 1 and re.match(r"^ (\w+=[^;]*;)+ \S", body[0]) is not None, repr(body))
    check("MLST facts", len(body) == 1 and "type=file;" in body[0].lower() and "size=5;" in body[0].lower(), repr(body))
    expect("MLST of a missing file is 550", ftp, "MLST nope", "550")
    expect("OPTS MLST type;size; is 200", ftp, "OPTS MLST type;size;", "200")
    resp = raw(ftp, "MLST f1.bin")
    body = resp.split("\n")[1:-1]
    check("MLST after OPTS MLST shows only type and size", len(body) == 1 and re.match(r"^ type=file;size=5; ", body[0], re.I) is not None, repr(body))
    expect("OPTS MLST type;size;modify;perm; restores", ftp, "OPTS MLST type;size;modify;perm;", "200")
    # STAT with a path
    resp = expect("STAT of a file is 211/212/213", ftp, "STAT f1.bin", ("211", "212", "213"), r"f1\.bin")
    resp = expect("STAT of a directory is 211/212/213", ftp, "STAT /ftplib/ls", ("211", "212", "213"), r"name with spaces\.txt")
    expect("STAT of a missing path is 450/550", ftp, "STAT /nope", ("450", "550"))
    ftp.quit()


def data_connections():
    ftp = connect()
    login(ftp)
    ftp.cwd("/ftplib/keep")
    # PASV
    resp = expect("PASV is 227 (h1,h2,h3,h4,p1,p2)", ftp, "PASV", "227", r"^227 Entering Passive Mode \((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)")
    m = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", resp)
    if m:
        nums = [int(x) for x in m.groups()]
        check("PASV advertises 127.0.0.1", nums[:4] == [127, 0, 0, 1], resp)
        port = nums[4] * 256 + nums[5]
        check("PASV port in the default range 50000-50099", 50000 <= port <= 50099, str(port))
        s = socket.create_connection((HOST, port), timeout=TIMEOUT)
        ftp.voidcmd("TYPE A")
        r = raw(ftp, "NLST")
        check("NLST over PASV 150", r.startswith("150"), r)
        got = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            got += c
        s.close()
        r = ftp.getmultiline()
        check("NLST over PASV 226", r.startswith("226"), r)
        check("NLST over PASV has CRLF names", b"appended.txt\r\n" in got, repr(got))
    # EPSV
    resp = expect("EPSV is 229 (|||port|)", ftp, "EPSV", "229", r"^229 .*\(\|\|\|\d+\|\)")
    expect("EPSV 1 is 229", ftp, "EPSV 1", "229", r"\(\|\|\|\d+\|\)")
    expect("EPSV 2 on IPv4 is 522", ftp, "EPSV 2", "522")
    ftp.af = socket.AF_INET6  # make ftplib use EPSV for the next transfer
    try:
        check("RETR over EPSV", retr(ftp, "appended.txt") == b"first\nsecond\n")
    finally:
        ftp.af = socket.AF_INET
    # PORT (active) toward our own address
    ftp.set_pasv(False)
    check("RETR over PORT (active)", retr(ftp, "appended.txt") == b"first\nsecond\n")
    names = ftp.nlst()
    check("NLST over PORT", "appended.txt" in names, repr(names))
    stor(ftp, "active.bin", pattern(100_000, 6))
    check("STOR over PORT", retr(ftp, "active.bin") == pattern(100_000, 6))
    ftp.delete("active.bin")
    ftp.set_pasv(True)
    # EPRT toward our own address
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(TIMEOUT)
    lport = lsock.getsockname()[1]
    expect("EPRT |1|127.0.0.1|port| is 200", ftp, f"EPRT |1|127.0.0.1|{lport}|", "200")
    ftp.voidcmd("TYPE I")
    r = raw(ftp, "RETR appended.txt")
    check("RETR over EPRT 150", r.startswith("150"), r)
    if r.startswith("150"):
        c, _ = lsock.accept()
        c.settimeout(TIMEOUT)
        got = b""
        while True:
            d = c.recv(65536)
            if not d:
                break
            got += d
        c.close()
        r = ftp.getmultiline()
        check("RETR over EPRT 226 and bytes", r.startswith("226") and got == b"first\nsecond\n", f"{r!r} {got!r}")
    lsock.close()
    # Bounce protection: PORT/EPRT toward another address
    expect("PORT to another address is refused", ftp, f"PORT 127,0,0,2,{lport >> 8},{lport & 255}", ("500", "501", "504"))
    expect("EPRT to another address is refused", ftp, f"EPRT |1|127.0.0.2|{lport}|", ("500", "501", "504"))
    expect("EPRT with an unknown protocol is 522", ftp, f"EPRT |3|127.0.0.1|{lport}|", "522")
    expect("PORT syntax error is 501", ftp, "PORT 1,2,3", "501")
    expect("PORT to a privileged port is refused (RFC 2577)", ftp, "PORT 127,0,0,1,0,21", ("500", "501", "504"))
    ftp.quit()

    # EPSV ALL
    ftp = connect()
    login(ftp)
    expect("EPSV ALL is 200", ftp, "EPSV ALL", "200")
    expect("PASV after EPSV ALL is refused", ftp, "PASV", ("500", "501", "502", "503", "504", "550"))
    expect("PORT after EPSV ALL is refused", ftp, "PORT 127,0,0,1,200,1", ("500", "501", "502", "503", "504", "550"))
    expect("EPRT after EPSV ALL is refused", ftp, "EPRT |1|127.0.0.1|51201|", ("500", "501", "502", "503", "504", "550"))
    ftp.af = socket.AF_INET6
    check("RETR over EPSV after EPSV ALL", retr(ftp, "/ftplib/keep/appended.txt") == b"first\nsecond\n")
    ftp.af = socket.AF_INET
    ftp.quit()


def abort():
    ftp = connect()
    login(ftp)
    big = pattern(12 * 1024 * 1024, 7)
    stor(ftp, "/ftplib/big.bin", big)
    ftp.voidcmd("TYPE I")
    conn = ftp.transfercmd("RETR /ftplib/big.bin")
    first = conn.recv(4096)
    check("RETR started before ABOR", len(first) > 0)
    # As lftp does: Telnet IP and Synch before ABOR (the IAC bytes must be tolerated).
    ftp.sock.sendall(b"\xff\xf4\xff\xf2ABOR\r\n")
    r1 = ftp.getmultiline()
    if r1.startswith("426"):
        r2 = ftp.getmultiline()
        check("ABOR during a transfer: 426 then 226", r2.startswith("226"), f"{r1!r} then {r2!r}")
    else:
        # The whole file was already in flight: 226 for it, then 225/226 for ABOR.
        r2 = ftp.getmultiline()
        check("ABOR after the transfer ended: 226 then 225/226", r1.startswith("226") and r2[:3] in ("225", "226"), f"{r1!r} then {r2!r}")
    conn.close()
    expect("session in step after ABOR", ftp, "NOOP", "200")
    check("transfer works after ABOR", retr(ftp, "/ftplib/keep/appended.txt") == b"first\nsecond\n")
    # ftplib's abort(): ABOR sent as urgent data.
    conn = ftp.transfercmd("RETR /ftplib/big.bin")
    conn.recv(4096)
    try:
        r = ftp.abort()
        check("ftplib abort() gets 426/225/226", r[:3] in ("426", "225", "226"), r)
        if r.startswith("426"):
            r2 = ftp.getmultiline()
            check("ftplib abort(): 226 after 426", r2.startswith("226"), r2)
    except Exception as e:  # noqa: BLE001
        check("ftplib abort()", False, repr(e))
    conn.close()
    expect("session in step after ftplib abort()", ftp, "NOOP", "200")
    check("ftplib delete() big", ftp.delete("/ftplib/big.bin").startswith("250"))
    ftp.quit()


def rein():
    ftp = connect()
    login(ftp)
    ftp.cwd("/ftplib")
    expect("REIN is 220", ftp, "REIN", ("220", "120"))
    expect("after REIN, logged out (530)", ftp, "PWD", "530")
    expect("USER after REIN", ftp, "USER anonymous", "331")
    expect("PASS after REIN", ftp, "PASS guest@", "230")
    expect("after REIN, the directory is / again", ftp, "PWD", "257", r'^257 "/"( |$)')
    ftp.quit()


def anonymous():
    ftp = connect()
    r = ftp.login()  # anonymous, password anonymous@
    tree_before = sorted(ftp.nlst("/ftplib")), sorted(ftp.nlst("/ftplib/keep"))
    check("anonymous login 230", r.startswith("230"), r)
    check("anonymous can read", retr(ftp, "/ftplib/keep/appended.txt") == b"first\nsecond\n")
    check("anonymous can list", "appended.txt" in ftp.nlst("/ftplib/keep"))
    ftp.voidcmd("TYPE I")
    for cmd in ("STOR /ftplib/anon.txt", "APPE /ftplib/keep/appended.txt", "STOU"):
        try:
            ftp.storbinary(cmd, io.BytesIO(b"x"))
            check(f"anonymous {cmd.split()[0]} refused with 550", False, "accepted")
        except ftplib.error_perm as e:
            check(f"anonymous {cmd.split()[0]} refused with 550", str(e).startswith("550"), str(e))
    expect("anonymous DELE is 550", ftp, "DELE /ftplib/keep/appended.txt", "550")
    expect("anonymous MKD is 550", ftp, "MKD /ftplib/anon", "550")
    expect("anonymous XMKD is 550", ftp, "XMKD /ftplib/anon", "550")
    expect("anonymous RMD is 550", ftp, "RMD /ftplib/keep/d2", "550")
    expect("anonymous XRMD is 550", ftp, "XRMD /ftplib/keep/d2", "550")
    r = raw(ftp, "RNFR /ftplib/keep/appended.txt")
    if r.startswith("350"):
        expect("anonymous RNTO is 550", ftp, "RNTO /ftplib/keep/stolen.txt", "550")
    else:
        check("anonymous RNFR is 550", r.startswith("550"), r)
    tree_after = sorted(ftp.nlst("/ftplib")), sorted(ftp.nlst("/ftplib/keep"))
    check("nothing changed for anonymous", tree_after == tree_before, f"{tree_before!r} -> {tree_after!r}")
    check("appended.txt intact", retr(ftp, "/ftplib/keep/appended.txt") == b"first\nsecond\n")
    ftp.quit()


def main():
    for fn in (before_login, basics, directories, files, ascii_mode, listings, data_connections, abort, rein, anonymous):
        section(fn)
    print(f"ftplib_all.py: {checks} checks, {len(failed)} failing")
    if failed:
        print("FAILED CHECKS:")
        for f in failed:
            print(f"  - {f}")
        sys.exit(1)


if __name__ == "__main__":
    main()
