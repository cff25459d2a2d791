//! Session tests: an in-memory network and file system, a virtual clock,
//! and one test per behaviour, named for it.

use std::string::String;
use std::vec::Vec;
use std::{format, vec};

use core::net::Ipv4Addr;

use crate::config::{Account, Config};
use crate::net::SockState;
use crate::storage::{self, Storage};
use crate::testing::{CLIENT_IP, MemFs, MockNet};
use crate::{Instant, Server};

// ---- the test driver -------------------------------------------------------

const ACCOUNTS: &[Account<'static>] = &[
    Account {
        user: "test",
        pass: "test",
        root: "/",
        writable: true,
    },
    Account {
        user: "jail",
        pass: "pw",
        root: "/home",
        writable: true,
    },
];

fn config() -> Config<'static> {
    Config {
        accounts: ACCOUNTS,
        anonymous_root: Some("/"),
        banner: "ftpd test",
        max_sessions: 2,
        idle_timeout_ms: 60_000,
        data_timeout_ms: 10_000,
        login_fail_delay_ms: 1_000,
        max_login_failures: 3,
        pasv_ports: (50000, 50009),
        pasv_address: None,
    }
}

struct T {
    server: Server<'static, MockNet, MemFs, 4>,
    net: MockNet,
    fs: MemFs,
    now: u64,
    ctrl: usize,
}

fn fixture() -> MemFs {
    MemFs::new()
        .file("/readme.txt", b"hello\nworld\n")
        .dir("/sub")
        .file("/sub/file.bin", &[7u8; 5000])
        .dir("/home")
        .file("/home/mine.txt", b"mine")
        .dir("/empty")
}

impl T {
    fn with(config: Config<'static>, fs: MemFs) -> T {
        let banner = config.banner;
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
        let mut t = T {
            server: Server::new(config, buf),
            net: MockNet::default(),
            fs,
            now: 0,
            ctrl: 0,
        };
        t.ctrl = t.connect();
        assert_eq!(t.net.take(t.ctrl), format!("220 {banner}\r\n"));
        t
    }

    fn new() -> T {
        Self::with(config(), fixture())
    }

    /// A logged-in session as `test`.
    fn login() -> T {
        let mut t = T::new();
        t.expect("USER test", "331 ");
        t.expect("PASS test", "230 ");
        t
    }

    fn connect(&mut self) -> usize {
        let s = self
            .net
            .client_connects(CLIENT_IP.into(), 30000 + self.net.socks.len() as u16);
        self.run();
        s
    }

    fn run(&mut self) {
        for _ in 0..1000 {
            let p = self
                .server
                .poll(Instant::from_millis(self.now), &mut self.net, &mut self.fs);
            if !p.progressed {
                return;
            }
        }
        panic!("server never settles");
    }

    fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.run();
    }

    fn send_raw(&mut self, bytes: &[u8]) -> String {
        self.net.socks[self.ctrl].rx.extend(bytes);
        self.run();
        self.net.take(self.ctrl)
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\r\n").as_bytes())
    }

    #[track_caller]
    fn expect(&mut self, line: &str, start: &str) -> String {
        let r = self.cmd(line);
        assert!(
            r.starts_with(start),
            "{line:?}: expected {start:?}, got {r:?}"
        );
        r
    }

    /// PASV, then the client connects; returns the data socket.
    fn pasv(&mut self) -> usize {
        let r = self.expect("PASV", "227 Entering Passive Mode (192,0,2,1,");
        let nums: Vec<u16> = r[r.find('(').unwrap() + 1..r.find(')').unwrap()]
            .split(',')
            .map(|n| n.parse().unwrap())
            .collect();
        let port = nums[4] * 256 + nums[5];
        let s = self
            .net
            .connect_passive(port, CLIENT_IP.into())
            .expect("listening");
        self.run();
        s
    }

    fn closed(&self, s: usize) -> bool {
        self.net.socks[s].released
    }
}

// ---- login -------------------------------------------------------------------

#[test]
fn greeting_is_220_with_banner() {
    let mut t = T::new();
    let s = t.connect();
    assert_eq!(t.net.take(s), "220 ftpd test\r\n");
}

#[test]
fn login_succeeds_with_331_then_230() {
    let mut t = T::new();
    t.net.take(t.ctrl);
    assert_eq!(t.cmd("USER test"), "331 Please specify the password.\r\n");
    assert_eq!(t.cmd("PASS test"), "230 Login successful.\r\n");
}

#[test]
fn unknown_user_gets_the_same_331_as_a_known_one() {
    let mut t = T::new();
    let known = t.cmd("USER test");
    let unknown = t.cmd("USER nosuchuser");
    assert_eq!(known, unknown);
}

#[test]
fn wrong_password_is_answered_530_after_the_delay() {
    let mut t = T::new();
    t.expect("USER test", "331");
    assert_eq!(t.cmd("PASS wrong"), "", "no immediate answer");
    t.advance(999);
    assert_eq!(t.net.take(t.ctrl), "");
    t.advance(1);
    assert_eq!(t.net.take(t.ctrl), "530 Login incorrect.\r\n");
    // The session is usable afterwards.
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
}

#[test]
fn third_failed_login_closes_with_421() {
    let mut t = T::new();
    for round in 0..3 {
        t.expect("USER test", "331");
        t.cmd("PASS bad");
        t.advance(1000);
        let r = t.net.take(t.ctrl);
        if round < 2 {
            assert_eq!(r, "530 Login incorrect.\r\n");
        } else {
            assert_eq!(r, "421 Too many failed logins, closing.\r\n");
        }
    }
    assert!(t.closed(t.ctrl));
}

#[test]
fn pass_before_user_is_503() {
    let mut t = T::new();
    t.expect("PASS x", "503 ");
}

#[test]
fn anonymous_logs_in_with_any_password_read_only() {
    let mut t = T::new();
    t.expect("USER anonymous", "331");
    t.expect("PASS me@example.com", "230");
    t.expect("MKD x", "550 Permission denied.");
    t.expect("DELE readme.txt", "550 Permission denied.");
    t.expect("RNFR readme.txt", "550 Permission denied.");
    t.pasv();
    t.expect("STOR up.txt", "550 Permission denied.");
    t.expect("SIZE readme.txt", "213 12");
}

#[test]
fn anonymous_can_be_disabled() {
    let mut t = T::with(
        Config {
            anonymous_root: None,
            ..config()
        },
        fixture(),
    );
    t.expect("USER anonymous", "331");
    t.cmd("PASS x");
    t.advance(1000);
    assert_eq!(t.net.take(t.ctrl), "530 Login incorrect.\r\n");
}

#[test]
fn commands_before_login_are_530() {
    let mut t = T::new();
    for c in [
        "PWD", "CWD /", "LIST", "RETR a", "STOR a", "PASV", "SIZE a", "MKD a", "STAT",
    ] {
        t.expect(c, "530 Please login with USER and PASS.");
    }
}

#[test]
fn feat_syst_help_noop_work_before_login() {
    let mut t = T::new();
    t.expect("FEAT", "211-Features:");
    t.expect("SYST", "215 UNIX Type: L8");
    t.expect("HELP", "214-");
    t.expect("NOOP", "200 ");
    t.expect("OPTS UTF8 ON", "200 ");
    t.expect("CLNT lftp/4.9", "200 ");
    t.expect("AUTH TLS", "502 ");
}

#[test]
fn feat_advertises_what_works_with_space_indented_lines() {
    let mut t = T::new();
    t.net.take(t.ctrl);
    assert_eq!(
        t.cmd("FEAT"),
        "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n MLST type*;size*;modify*;perm*;\r\n PASV\r\n \
         REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"
    );
}

#[test]
fn opts_mlst_selects_facts() {
    let mut t = T::login();
    assert_eq!(
        t.cmd("OPTS MLST type;size;"),
        "200 MLST OPTS type;size;\r\n"
    );
    assert!(t.cmd("FEAT").contains(" MLST type*;size*;modify;perm;\r\n"));
    t.expect("OPTS FOO", "501 ");
    t.expect("OPTS UTF8 OFF", "504 ");
}

#[test]
fn rein_logs_out() {
    let mut t = T::login();
    t.expect("REIN", "220 ");
    t.expect("PWD", "530 ");
}

#[test]
fn acct_is_superfluous() {
    let mut t = T::new();
    t.expect("ACCT x", "503 ");
    let mut t = T::login();
    t.expect("ACCT x", "202 ");
}

// ---- syntax and bad input ----------------------------------------------------------

#[test]
fn unknown_command_is_500_and_session_goes_on() {
    let mut t = T::login();
    t.expect("FOO bar", "500 Unknown command.");
    t.expect("NOOP", "200");
}

#[test]
fn argument_errors_are_501_and_504() {
    let mut t = T::login();
    t.expect("RETR", "501 Missing argument.");
    t.expect("PWD x", "501 ");
    t.expect("TYPE X", "501 ");
    t.expect("TYPE E", "504 ");
    t.expect("MODE B", "504 ");
    t.expect("STRU R", "504 ");
    t.expect("PORT 1,2,3", "501 ");
    t.expect("REST abc", "501 ");
    t.expect("EPRT |9|x|1|", "522 ");
}

#[test]
fn over_long_line_is_500_and_the_rest_is_dropped() {
    let mut t = T::login();
    let long = format!("RETR {}\r\nNOOP\r\n", "x".repeat(2000));
    let r = t.send_raw(long.as_bytes());
    assert_eq!(r, "500 Command line too long.\r\n200 NOOP ok.\r\n");
}

#[test]
fn nul_and_invalid_utf8_are_500() {
    let mut t = T::login();
    assert!(t.send_raw(b"RETR a\0b\r\n").starts_with("500 "));
    assert!(t.send_raw(b"RETR \xc3\x28\r\n").starts_with("500 "));
    t.expect("NOOP", "200");
}

#[test]
fn bare_lf_and_pipelined_commands_work() {
    let mut t = T::login();
    let r = t.send_raw(b"NOOP\nTYPE I\nPWD\r\n");
    assert_eq!(
        r,
        "200 NOOP ok.\r\n200 Type set to I.\r\n257 \"/\" is the current directory.\r\n"
    );
}

#[test]
fn command_split_across_packets_is_reassembled() {
    let mut t = T::login();
    assert_eq!(t.send_raw(b"NO"), "");
    assert_eq!(t.send_raw(b"OP\r"), "200 NOOP ok.\r\n");
    assert_eq!(t.send_raw(b"\n"), "");
}

#[test]
fn utf8_names_are_fine_everywhere_in_a_line() {
    let mut t = T::login();
    // A multi-byte character across the fifth byte (the log checks for "PASS ").
    t.expect("MKD été", "257 \"/été\" created.");
    t.expect("RMD été", "250 ");
    t.expect("MKD 日本語", "257 ");
}

#[test]
fn telnet_iac_is_ignored() {
    let mut t = T::login();
    assert_eq!(t.send_raw(b"\xff\xf4\xff\xf2NOOP\r\n"), "200 NOOP ok.\r\n");
}

// ---- directories ------------------------------------------------------------------

#[test]
fn pwd_cwd_cdup() {
    let mut t = T::login();
    assert_eq!(t.cmd("PWD"), "257 \"/\" is the current directory.\r\n");
    t.expect("CWD sub", "250 Directory changed to /sub.");
    t.expect("XPWD", "257 \"/sub\"");
    t.expect("CDUP", "250 Directory changed to /.");
    t.expect("CDUP", "250 Directory changed to /.");
    t.expect("CWD /sub/", "250 ");
    t.expect("CWD ..", "250 Directory changed to /.");
    t.expect("CWD ../../..", "250 Directory changed to /.");
    t.expect("XCWD sub", "250 ");
    t.expect("CWD", "250 Directory changed to /.");
}

#[test]
fn cwd_to_missing_or_file_is_550() {
    let mut t = T::login();
    t.expect("CWD nope", "550 No such file or directory.");
    t.expect("CWD readme.txt", "550 Not a directory.");
}

#[test]
fn pwd_doubles_quotes() {
    let mut t = T::with(config(), fixture().dir("/a \"q\""));
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    t.expect("CWD a \"q\"", "250");
    assert_eq!(
        t.cmd("PWD"),
        "257 \"/a \"\"q\"\"\" is the current directory.\r\n"
    );
}

#[test]
fn mkd_rmd() {
    let mut t = T::login();
    assert_eq!(t.cmd("MKD new dir"), "257 \"/new dir\" created.\r\n");
    t.expect("MKD new dir", "550 File exists.");
    t.expect("XMKD /sub/x", "257 \"/sub/x\" created.");
    t.expect("RMD sub", "550 Directory not empty.");
    t.expect("RMD new dir", "250 Directory removed.");
    t.expect("XRMD /sub/x", "250 ");
    t.expect("RMD nope", "550 ");
    t.expect("MKD nope/deeper", "550 ");
    t.expect("RMD /", "550 ");
}

#[test]
fn the_root_can_be_neither_created_removed_nor_renamed() {
    let mut t = T::login();
    t.expect("MKD /", "550 File exists.");
    t.expect("RMD /", "550 Permission denied.");
    t.expect("DELE ..", "550 Permission denied.");
    t.expect("RNFR /", "550 Permission denied.");
    t.expect("RNFR readme.txt", "350 Ready for RNTO.");
    t.expect("RNTO /", "550 File exists.");
    t.expect("RNFR sub", "350 Ready for RNTO.");
    t.expect("RNTO sub/inner", "550 Permission denied.");
    t.expect("CWD /", "250 Directory changed to /.");
}

#[test]
fn rmd_of_the_working_directory_moves_up() {
    let mut t = T::login();
    t.expect("CWD empty", "250");
    t.expect("RMD /empty", "250");
    t.expect("PWD", "257 \"/\"");
}

#[test]
fn dele() {
    let mut t = T::login();
    t.expect("DELE readme.txt", "250 File deleted.");
    t.expect("DELE readme.txt", "550 No such file or directory.");
    t.expect("DELE sub", "550 Is a directory.");
    assert!(t.fs.get("/readme.txt").is_none());
}

#[test]
fn rename_with_rnfr_rnto() {
    let mut t = T::login();
    t.expect("RNFR readme.txt", "350 Ready for RNTO.");
    t.expect("RNTO sub/moved.txt", "250 Rename successful.");
    assert_eq!(t.fs.get("/sub/moved.txt").unwrap(), b"hello\nworld\n");
    t.expect("RNFR sub", "350");
    t.expect("RNTO renamed", "250");
    assert!(t.fs.get("/renamed/file.bin").is_some());
}

#[test]
fn rnto_without_rnfr_is_503() {
    let mut t = T::login();
    t.expect("RNTO x", "503 RNFR required first.");
    t.expect("RNFR readme.txt", "350");
    t.expect("NOOP", "200");
    t.expect("RNTO x", "503 ");
}

#[test]
fn rename_errors() {
    let mut t = T::login();
    t.expect("RNFR nope", "550 ");
    t.expect("RNFR readme.txt", "350");
    t.expect("RNTO sub", "550 File exists.");
    t.expect("RNFR sub", "350");
    t.expect("RNTO sub/inner", "550 ");
    t.expect("RNFR /", "550 ");
}

#[test]
fn paths_never_leave_the_user_root() {
    let mut t = T::new();
    t.expect("USER jail", "331");
    t.expect("PASS pw", "230");
    t.expect("SIZE mine.txt", "213 4");
    t.expect("SIZE ../readme.txt", "550 ");
    t.expect("SIZE /../../readme.txt", "550 ");
    t.expect("CWD ../..", "250 Directory changed to /.");
    t.expect("SIZE mine.txt", "213 4");
    t.expect("SIZE ../../../home/mine.txt", "550 ");
}

#[test]
fn listings_never_leave_the_user_root() {
    let mut t = T::new();
    t.expect("USER jail", "331");
    t.expect("PASS pw", "230");
    let d = t.pasv();
    t.expect("NLST", "150");
    assert_eq!(t.net.take(d), "mine.txt\r\n");
    let d = t.pasv();
    t.expect("NLST ../..", "150");
    assert_eq!(t.net.take(d), "mine.txt\r\n");
    let r = t.cmd("STAT /");
    assert!(r.contains("mine.txt") && !r.contains("readme.txt"), "{r}");
}

// ---- information ---------------------------------------------------------------

#[test]
fn size_and_mdtm() {
    let mut t = T::login();
    assert_eq!(t.cmd("SIZE readme.txt"), "213 12\r\n");
    t.expect("SIZE sub", "550 Not a regular file.");
    t.expect("SIZE nope", "550 ");
    assert_eq!(t.cmd("MDTM readme.txt"), "213 20240102030405\r\n");
    t.expect("MDTM 20240101000000 readme.txt", "550 ");
}

/// SIZE, MDTM, MLST and STAT share one handler: each keeps its own answers.
#[test]
fn size_and_mdtm_refuse_alike() {
    let mut t = T::login();
    assert_eq!(t.cmd("MDTM sub"), "550 Not a regular file.\r\n");
    assert_eq!(t.cmd("SIZE /"), "550 Not a regular file.\r\n");
    assert_eq!(t.cmd("MDTM nope"), "550 No such file or directory.\r\n");
    assert_eq!(t.cmd("SIZE sub/file.bin"), "213 5000\r\n");
    assert_eq!(t.cmd("MDTM sub/file.bin"), "213 20240102030405\r\n");
    assert_eq!(t.cmd("MLST nope"), "550 No such file or directory.\r\n");
    assert_eq!(t.cmd("STAT -la nope"), "550 No such file or directory.\r\n");
    assert_eq!(t.cmd("STAT -la readme.txt"), t.cmd("STAT readme.txt"));
    assert_eq!(
        t.cmd("MLST sub"),
        "250-Listing /sub\r\n type=dir;modify=20240102030405;perm=cdeflmp; /sub\r\n250 End.\r\n"
    );
}

#[test]
fn mlst_of_a_file_and_a_dir() {
    let mut t = T::login();
    assert_eq!(
        t.cmd("MLST readme.txt"),
        "250-Listing /readme.txt\r\n type=file;size=12;modify=20240102030405;perm=adfrw; /readme.txt\r\n250 End.\r\n"
    );
    assert!(
        t.cmd("MLST")
            .contains(" type=dir;modify=20240102030405;perm=cdeflmp; /\r\n")
    );
}

#[test]
fn stat_reports_the_session() {
    let mut t = T::login();
    let r = t.cmd("STAT");
    assert!(r.starts_with("211-FTP server status:\r\n"), "{r}");
    assert!(r.contains(" Logged in as test\r\n"));
    assert!(r.contains(" Open files: 0\r\n"));
    assert!(r.ends_with("211 End of status.\r\n"));
}

#[test]
fn stat_of_a_path_lists_over_the_control_connection() {
    let mut t = T::login();
    let r = t.cmd("STAT /sub");
    assert!(r.starts_with("213-Status of /sub:\r\n"), "{r}");
    assert!(
        r.contains(" -rw-r--r-- 1 ftp ftp         5000 Jan  2  2024 file.bin\r\n"),
        "{r}"
    );
    assert!(r.ends_with("213 End of status.\r\n"));
    let r = t.cmd("STAT readme.txt");
    assert!(r.contains("readme.txt\r\n213 End of status.\r\n"), "{r}");
    t.expect("STAT nope", "550 ");
}

#[test]
fn a_stat_listing_cut_short_still_ends_its_213_reply() {
    // Found by the session fuzzer: a client that stops reading its control
    // connection in the middle of `STAT dir`; at the data timeout the
    // listing is abandoned, and its last line must carry the 213 code that
    // opened it, not a 426 inside the multi-line reply.
    let mut fs = fixture().dir("/big");
    for i in 0..40 {
        fs = fs.file(
            &format!("/big/a-rather-long-file-name-number-{i:02}.txt"),
            b"x",
        );
    }
    let mut t = T::with(config(), fs);
    t.expect("USER test", "331 ");
    t.expect("PASS test", "230 ");
    let ctrl = t.ctrl;
    // Room for a reply and a few entries, not for the whole listing; the
    // client then reads nothing more.
    t.net.socks[ctrl].cap = 600;
    t.net.socks[ctrl].rx.extend(b"STAT /big\r\n");
    t.run();
    let head = t.net.take(ctrl);
    assert!(head.starts_with("213-Status of /big:\r\n"), "{head:?}");
    assert!(!head.contains("213 "), "the listing must not fit: {head:?}");
    t.net.socks[ctrl].cap = 0;
    t.advance(10_001);
    t.net.socks[ctrl].cap = 4096;
    t.advance(1);
    let rest = t.net.take(ctrl);
    let all = format!("{head}{rest}");
    let last = all.trim_end().rsplit("\r\n").next().unwrap();
    assert!(
        last.starts_with("213 "),
        "the listing must end with a 213 line: {all:?}"
    );
    for line in all.trim_end().split("\r\n").skip(1) {
        assert!(
            line.starts_with(' ') || line.starts_with("213 "),
            "a line inside the 213 reply: {line:?} in {all:?}"
        );
    }
    // The session goes on.
    t.expect("NOOP", "200 ");
}

#[test]
fn site_help_and_unknown_site() {
    let mut t = T::login();
    t.expect("SITE HELP", "214-SITE commands:");
    t.expect("SITE CHMOD 755 x", "504 ");
}

#[test]
fn help_for_one_command() {
    let mut t = T::login();
    t.expect("HELP retr", "214 RETR is supported.");
    t.expect("HELP XYZZ", "502 ");
    // Control characters are not echoed (found by the network fuzzer).
    assert_eq!(t.cmd("HELP line\x1b[2Js.txt"), "502 Unknown command.\r\n");
}

#[test]
fn type_mode_stru_allo() {
    let mut t = T::login();
    t.expect("TYPE I", "200 Type set to I.");
    t.expect("TYPE A N", "200 Type set to A.");
    t.expect("TYPE L 8", "200 Type set to I.");
    t.expect("MODE S", "200 ");
    t.expect("STRU F", "200 ");
    t.expect("ALLO 1000", "200 ");
}

// ---- data connections ----------------------------------------------------------

#[test]
fn pasv_advertises_the_configured_address() {
    let mut t = T::with(
        Config {
            pasv_address: Some(Ipv4Addr::new(127, 0, 0, 1)),
            ..config()
        },
        fixture(),
    );
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    t.expect("PASV", "227 Entering Passive Mode (127,0,0,1,195,80).");
    t.expect("PASV", "227 Entering Passive Mode (127,0,0,1,195,81).");
}

#[test]
fn epsv_and_epsv_all() {
    let mut t = T::login();
    t.expect("EPSV", "229 Entering Extended Passive Mode (|||50000|).");
    t.expect("EPSV 1", "229 ");
    t.expect("EPSV 2", "522 ");
    t.expect("EPSV ALL", "200 ");
    t.expect("PASV", "503 ");
    t.expect("PORT 192,0,2,2,195,80", "503 ");
    t.expect("EPSV", "229 ");
}

#[test]
fn passive_ports_rotate_within_the_range() {
    let mut t = T::login();
    let mut seen = vec![];
    for _ in 0..12 {
        let r = t.expect("EPSV", "229");
        seen.push(
            r[r.find("|||").unwrap() + 3..r.rfind('|').unwrap()]
                .parse::<u16>()
                .unwrap(),
        );
    }
    assert!(seen.iter().all(|p| (50000..=50009).contains(p)), "{seen:?}");
    assert_eq!(seen[10], 50000);
}

#[test]
fn port_to_a_third_party_is_refused() {
    let mut t = T::login();
    t.expect(
        "PORT 10,0,0,9,195,80",
        "504 Data connections only to your own address",
    );
    t.expect("EPRT |1|10.0.0.9|50000|", "504 ");
    t.expect("PORT 192,0,2,2,0,21", "504 ");
    t.expect("EPRT |2|::1|50000|", "522 ");
    t.expect("PORT 192,0,2,2,195,80", "200 PORT command successful.");
}

#[test]
fn passive_connection_from_another_address_is_refused() {
    let mut t = T::login();
    let r = t.expect("EPSV", "229");
    let port: u16 = r[r.find("|||").unwrap() + 3..r.rfind('|').unwrap()]
        .parse()
        .unwrap();
    let thief = t
        .net
        .connect_passive(port, Ipv4Addr::new(192, 0, 2, 66).into())
        .unwrap();
    t.run();
    assert!(t.net.socks[thief].reset, "the thief is reset");
    // The real client can still connect to the same port.
    let d = t
        .net
        .connect_passive(port, CLIENT_IP.into())
        .expect("listening again");
    t.run();
    t.expect("RETR readme.txt", "150 ");
    assert_eq!(t.net.take(d), "hello\nworld\n".replace('\n', "\r\n"));
}

#[test]
fn transfer_without_data_connection_is_425() {
    let mut t = T::login();
    t.expect("RETR readme.txt", "425 Use PORT, PASV, EPRT or EPSV first.");
    t.expect("LIST", "425 ");
    t.expect("STOR x", "425 ");
    assert!(
        t.fs.get("/x").is_none(),
        "no file created without a data connection"
    );
}

#[test]
fn transfer_waits_for_the_passive_connection_then_times_out_with_425() {
    let mut t = T::login();
    t.expect("EPSV", "229");
    assert_eq!(
        t.cmd("RETR readme.txt"),
        "",
        "waits for the data connection"
    );
    t.advance(9_999);
    assert_eq!(t.net.take(t.ctrl), "");
    t.advance(1);
    assert_eq!(t.net.take(t.ctrl), "425 Data connection timed out.\r\n");
    t.expect("NOOP", "200");
}

#[test]
fn transfer_command_waits_until_the_client_connects() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let r = t.expect("EPSV", "229");
    let port: u16 = r[r.find("|||").unwrap() + 3..r.rfind('|').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(t.cmd("RETR sub/file.bin"), "");
    let d = t.net.connect_passive(port, CLIENT_IP.into()).unwrap();
    t.run();
    assert_eq!(
        t.net.take(t.ctrl),
        "150 Opening BINARY mode data connection for file.bin (5000 bytes).\r\n226 Transfer complete (5000 bytes).\r\n"
    );
    assert_eq!(t.net.take_bytes(d), vec![7u8; 5000]);
    assert!(t.closed(d));
}

#[test]
fn active_mode_retr() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    t.expect("PORT 192,0,2,2,195,80", "200");
    let r = t.cmd("RETR readme.txt");
    assert!(
        r.starts_with("150 ") && r.contains("226 Transfer complete (12 bytes)."),
        "{r}"
    );
    let d = t
        .net
        .socks
        .iter()
        .position(|s| s.peer == Some("192.0.2.2:50000".parse().unwrap()))
        .unwrap();
    assert_eq!(t.net.take(d), "hello\nworld\n");
}

#[test]
fn active_connection_refused_gives_425() {
    let mut t = T::login();
    t.net.refuse_connects = true;
    t.expect("EPRT |1|192.0.2.2|50000|", "200 EPRT command successful.");
    t.expect("RETR readme.txt", "425 ");
}

// ---- transfers ---------------------------------------------------------------------

#[test]
fn retr_ascii_converts_lf_to_crlf() {
    let mut t = T::login();
    let d = t.pasv();
    let r = t.cmd("RETR readme.txt");
    assert!(r.starts_with("150 Opening ASCII mode data connection for readme.txt (12 bytes).\r\n"));
    assert!(r.ends_with("226 Transfer complete (14 bytes).\r\n"), "{r}");
    assert_eq!(t.net.take(d), "hello\r\nworld\r\n");
}

#[test]
fn retr_missing_or_directory_is_550() {
    let mut t = T::login();
    t.pasv();
    t.expect("RETR nope", "550 No such file or directory.");
    t.expect("RETR sub", "550 Is a directory.");
}

#[test]
fn retr_with_rest_resumes() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("REST 6", "350 Restarting at 6.");
    t.expect("RETR readme.txt", "150 ");
    assert_eq!(t.net.take(d), "world\n");
    // REST applies once.
    let d = t.pasv();
    t.expect("RETR readme.txt", "150 ");
    assert_eq!(t.net.take(d), "hello\nworld\n");
}

#[test]
fn rest_outlives_425_and_a_root_upload_but_not_a_failed_retr_or_a_listing() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    // No data connection: 425, REST still set.
    t.expect("REST 6", "350");
    t.expect("RETR readme.txt", "425 Use PORT, PASV, EPRT or EPSV first.");
    let d = t.pasv();
    t.expect("RETR readme.txt", "150 ");
    assert_eq!(t.net.take(d), "world\n");
    // `STOR /` is refused before REST is looked at.
    t.expect("REST 6", "350");
    t.expect("STOR /", "550 Is a directory.");
    let d = t.pasv();
    t.expect("RETR readme.txt", "150 ");
    assert_eq!(t.net.take(d), "world\n");
    // A failed RETR, a refused STOR and any listing drop it.
    for cmd in ["RETR nope", "STOR sub", "LIST", "MLSD readme.txt"] {
        t.expect("REST 6", "350");
        let d = t.pasv();
        t.cmd(cmd);
        t.run();
        let d2 = t.pasv();
        t.expect("RETR readme.txt", "150 ");
        assert_eq!(t.net.take(d2), "hello\nworld\n", "after {cmd}");
        let _ = d;
    }
}

#[test]
fn rest_past_the_end_is_554() {
    let mut t = T::login();
    t.pasv();
    t.expect("REST 100", "350");
    t.expect("RETR readme.txt", "554 ");
}

#[test]
fn stor_stores_and_answers_226_after_close() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR up load.bin", "150 Ok to send data.");
    t.net.socks[d].rx.extend(vec![1u8; 10_000]);
    t.run();
    assert_eq!(t.net.take(t.ctrl), "", "no 226 before the client closes");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(
        t.net.take(t.ctrl),
        "226 Transfer complete (10000 bytes).\r\n"
    );
    assert_eq!(t.fs.get("/up load.bin").unwrap(), &vec![1u8; 10_000]);
    assert_eq!(t.fs.open_files(), 0);
}

#[test]
fn stor_ascii_converts_crlf_to_lf_across_chunks() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR a.txt", "150");
    t.net.socks[d].rx.extend(b"one\r");
    t.run();
    t.net.socks[d].rx.extend(b"\ntwo\rthree\r\n\r");
    t.run();
    t.net.socks[d].fin = true;
    t.run();
    t.expect("NOOP", "226");
    assert_eq!(t.fs.get("/a.txt").unwrap(), b"one\ntwo\rthree\n\r");
}

#[test]
fn stor_ascii_keeps_a_cr_that_ends_a_chunk_without_lf_after_it() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR a.txt", "150");
    // Each chunk ends with a CR; only the last one is followed by an LF.
    for chunk in [&b"one\r"[..], b"x\r", b"\r\n"] {
        t.net.socks[d].rx.extend(chunk);
        t.run();
    }
    t.net.socks[d].fin = true;
    t.run();
    t.expect("NOOP", "226 Transfer complete (8 bytes).");
    assert_eq!(t.fs.get("/a.txt").unwrap(), b"one\rx\r\n");
}

#[test]
fn stor_over_existing_truncates_and_appe_appends() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR readme.txt", "150");
    t.net.socks[d].rx.extend(b"new");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(t.net.take(t.ctrl), "226 Transfer complete (3 bytes).\r\n");
    assert_eq!(t.fs.get("/readme.txt").unwrap(), b"new");
    let d = t.pasv();
    t.expect("APPE readme.txt", "150");
    t.net.socks[d].rx.extend(b"+more");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(t.fs.get("/readme.txt").unwrap(), b"new+more");
}

#[test]
fn rest_then_stor_resumes_an_upload() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("REST 5", "350");
    t.expect("STOR readme.txt", "150");
    t.net.socks[d].rx.extend(b"-there");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(t.fs.get("/readme.txt").unwrap(), b"hello-there");
}

#[test]
fn stou_searches_the_working_directory_below_the_user_root() {
    let fs = fixture()
        .dir("/home/d")
        .file("/home/d/stou0000.bin", b"taken");
    let mut t = T::with(config(), fs);
    t.expect("USER jail", "331");
    t.expect("PASS pw", "230");
    t.expect("CWD d", "250");
    let d = t.pasv();
    assert_eq!(t.cmd("STOU"), "150 FILE: stou0001.bin\r\n");
    t.net.socks[d].rx.extend(b"new");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(t.fs.get("/home/d/stou0001.bin").unwrap(), b"new");
    assert_eq!(t.fs.get("/home/d/stou0000.bin").unwrap(), b"taken");
}

#[test]
fn stou_counts_on_past_a_carry() {
    let mut fs = fixture();
    for n in 0..10 {
        fs = fs.file(&format!("/stou000{n}.bin"), b"taken");
    }
    let mut t = T::with(config(), fs);
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    t.pasv();
    assert_eq!(t.cmd("STOU"), "150 FILE: stou0010.bin\r\n");
}

#[test]
fn stou_without_room_for_a_name_is_553() {
    // The virtual path would fit, the storage path (under `/home`) not.
    let dir = format!("/home/{}", "x".repeat(239));
    let mut t = T::with(config(), fixture().dir(&dir));
    t.expect("USER jail", "331");
    t.expect("PASS pw", "230");
    t.expect(&format!("CWD {}", &dir[5..]), "250");
    t.pasv();
    assert_eq!(t.cmd("STOU"), "553 Cannot find a unique name.\r\n");
}

#[test]
fn stou_creates_a_unique_name() {
    let mut t = T::login();
    let d = t.pasv();
    let r = t.cmd("STOU");
    assert_eq!(r, "150 FILE: stou0000.bin\r\n");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(t.net.take(t.ctrl), "226 Transfer complete (0 bytes).\r\n");
    let d = t.pasv();
    assert_eq!(t.cmd("STOU"), "150 FILE: stou0001.bin\r\n");
    t.net.socks[d].fin = true;
    t.run();
    assert!(t.fs.get("/stou0000.bin").is_some() && t.fs.get("/stou0001.bin").is_some());
}

#[test]
fn stor_into_a_missing_directory_is_550() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR nope/x", "550 ");
    assert!(t.closed(d));
    t.pasv();
    t.expect("STOR sub", "550 Is a directory.");
}

#[test]
fn upload_reset_mid_transfer_is_426_and_keeps_the_partial_file() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR part.bin", "150");
    t.net.socks[d].rx.extend(vec![9u8; 3000]);
    t.run();
    t.net.socks[d].reset = true;
    t.run();
    let r = t.net.take(t.ctrl);
    assert!(
        r.starts_with("426 Data connection lost; transfer aborted. (3000 bytes"),
        "{r}"
    );
    assert_eq!(t.fs.get("/part.bin").unwrap().len(), 3000);
    assert_eq!(t.fs.open_files(), 0);
}

#[test]
fn disk_full_during_stor_is_452_and_other_files_survive() {
    let mut fs = fixture();
    fs.capacity = Some(fs.used() + 1000);
    let mut t = T::with(config(), fs);
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR big.bin", "150");
    t.net.socks[d].rx.extend(vec![1u8; 5000]);
    t.run();
    let r = t.net.take(t.ctrl);
    assert!(
        r.starts_with("452 No space left on device; partial file kept. ("),
        "{r}"
    );
    assert_eq!(t.fs.get("/readme.txt").unwrap(), b"hello\nworld\n");
    assert!(
        t.fs.get("/big.bin").is_some(),
        "the reply says the partial file is kept"
    );
    assert!(t.closed(d));
    assert_eq!(t.fs.open_files(), 0);
}

#[test]
fn stalled_transfer_times_out_with_426() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR slow.bin", "150");
    t.advance(10_000);
    let r = t.net.take(t.ctrl);
    assert!(r.starts_with("426 Data connection timed out"), "{r}");
    assert!(t.net.socks[d].reset);
}

#[test]
fn abor_during_transfer_is_426_then_226() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR x.bin", "150");
    assert_eq!(
        t.cmd("ABOR"),
        "426 Transfer aborted.\r\n226 ABOR successful.\r\n"
    );
    assert!(t.net.socks[d].reset);
    t.expect("ABOR", "225 No transfer to abort.");
}

#[test]
fn commands_during_a_transfer_wait_except_noop_stat_abor() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR x.bin", "150");
    assert_eq!(t.cmd("PWD"), "", "PWD waits");
    assert_eq!(
        t.cmd("NOOP"),
        "",
        "behind PWD in the socket, NOOP waits too"
    );
    t.net.socks[d].rx.extend(b"abc");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(
        t.net.take(t.ctrl),
        "226 Transfer complete (3 bytes).\r\n257 \"/\" is the current directory.\r\n200 NOOP ok.\r\n"
    );
    let d = t.pasv();
    t.expect("STOR y.bin", "150");
    assert_eq!(
        t.cmd("STAT"),
        "211 Transfer in progress: 0 bytes so far.\r\n"
    );
    t.net.socks[d].fin = true;
    t.run();
}

#[test]
fn client_closing_control_mid_upload_still_stores_the_file() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR lazy.bin", "150");
    t.net.socks[d].rx.extend(b"data");
    t.net.socks[d].fin = true;
    t.net.socks[t.ctrl].fin = true;
    t.run();
    assert_eq!(t.fs.get("/lazy.bin").unwrap(), b"data");
    assert!(t.closed(t.ctrl));
    assert_eq!(t.server.sessions(), 0);
}

// ---- listings ----------------------------------------------------------------------

#[test]
fn list_is_unix_ls_form() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("LIST", "150 Here comes the directory listing.");
    let data = t.net.take(d);
    assert_eq!(
        data,
        "drwxr-xr-x 1 ftp ftp            0 Jan  2  2024 empty\r\n\
         drwxr-xr-x 1 ftp ftp            0 Jan  2  2024 home\r\n\
         -rw-r--r-- 1 ftp ftp           12 Jan  2  2024 readme.txt\r\n\
         drwxr-xr-x 1 ftp ftp            0 Jan  2  2024 sub\r\n"
    );
    assert!(t.closed(d));
}

#[test]
fn list_options_are_skipped_and_a_file_can_be_listed() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("LIST -la sub", "150");
    assert_eq!(
        t.net.take(d),
        "-rw-r--r-- 1 ftp ftp         5000 Jan  2  2024 file.bin\r\n"
    );
    let d = t.pasv();
    t.expect("LIST -l /sub/file.bin", "150");
    assert_eq!(
        t.net.take(d),
        "-rw-r--r-- 1 ftp ftp         5000 Jan  2  2024 file.bin\r\n"
    );
    t.pasv();
    t.expect("LIST nope", "550 ");
}

#[test]
fn nlst_and_mlsd() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("NLST", "150");
    assert_eq!(t.net.take(d), "empty\r\nhome\r\nreadme.txt\r\nsub\r\n");
    let d = t.pasv();
    t.expect("MLSD sub", "150");
    assert_eq!(
        t.net.take(d),
        "type=file;size=5000;modify=20240102030405;perm=adfrw; file.bin\r\n"
    );
    t.pasv();
    t.expect(
        "MLSD readme.txt",
        "501 Not a directory; use MLST for a file.",
    );
}

#[test]
fn read_only_listing_shows_read_only_permissions() {
    let mut t = T::new();
    t.expect("USER anonymous", "331");
    t.expect("PASS x", "230");
    let d = t.pasv();
    t.expect("MLSD", "150");
    let data = t.net.take(d);
    assert!(
        data.contains("type=file;size=12;modify=20240102030405;perm=r; readme.txt\r\n"),
        "{data}"
    );
    assert!(data.contains("perm=el; sub\r\n"));
}

#[test]
fn a_large_listing_streams_in_pieces() {
    let mut fs = MemFs::new();
    for i in 0..300 {
        fs = fs.file(&format!("/f{i:04}.dat"), b"x");
    }
    let mut t = T::with(config(), fs);
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    let d = t.pasv();
    t.net.socks[d].cap = 1000;
    t.expect("NLST", "150");
    let mut got = String::new();
    for _ in 0..100 {
        got.push_str(&t.net.take(d));
        t.run();
        if t.closed(d) {
            break;
        }
    }
    got.push_str(&t.net.take(d));
    assert_eq!(got.lines().count(), 300);
    assert!(got.starts_with("f0000.dat\r\nf0001.dat\r\n") && got.ends_with("f0299.dat\r\n"));
    t.expect("NOOP", "226 Transfer complete (3300 bytes).");
}

// ---- found by fuzzing ----------------------------------------------------------------

#[test]
fn a_command_pipelined_behind_stat_of_a_directory_waits_for_its_end() {
    let mut t = T::login();
    let r = t.send_raw(b"STAT /sub\r\nNOOP\r\n");
    assert!(r.ends_with("213 End of status.\r\n200 NOOP ok.\r\n"), "{r}");
}

#[test]
fn a_failure_reply_waits_for_room_and_arrives_whole() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    t.expect("STOR x.bin", "150");
    // The client stops reading its control connection.
    let c = t.ctrl;
    t.net.socks[c].cap = 100;
    t.net.socks[d].reset = true;
    t.run();
    assert_eq!(t.net.take(c), "", "no half reply");
    t.net.socks[c].cap = 64 * 1024;
    t.run();
    let r = t.net.take(c);
    assert!(
        r.starts_with("426 Data connection lost; transfer aborted. (0 bytes"),
        "{r}"
    );
    assert!(r.ends_with(")\r\n"));
}

#[test]
fn a_client_that_stops_reading_after_a_wrong_password_still_times_out() {
    let mut t = T::new();
    t.expect("USER test", "331");
    t.net.socks[t.ctrl].cap = 10;
    t.cmd("PASS wrong");
    t.advance(1_000);
    let p = t
        .server
        .poll(Instant::from_millis(t.now), &mut t.net, &mut t.fs);
    assert!(p.next_wake.is_some_and(|w| w.millis() > t.now), "{p:?}");
    t.advance(60_000);
    assert_eq!(t.server.sessions(), 0);
    assert!(t.closed(t.ctrl));
}

#[test]
fn fin_after_an_unterminated_line_ends_the_session() {
    let mut t = T::login();
    t.send_raw(b"NOO");
    t.net.socks[t.ctrl].fin = true;
    t.run();
    assert_eq!(t.server.sessions(), 0);
}

#[test]
fn fin_inside_an_over_long_line_ends_the_session() {
    let mut t = T::login();
    let mut line = vec![b'x'; crate::MAX_LINE + 10];
    line.push(0xff);
    assert!(t.send_raw(&line).starts_with("500 "));
    t.net.socks[t.ctrl].fin = true;
    t.run();
    assert_eq!(t.server.sessions(), 0);
}

#[test]
fn a_deferred_command_without_room_for_its_425_does_not_spin() {
    let mut t = T::login();
    t.expect("EPSV", "229");
    t.cmd("LIST");
    t.net.socks[t.ctrl].cap = 0;
    t.advance(10_000);
    let p = t
        .server
        .poll(Instant::from_millis(t.now), &mut t.net, &mut t.fs);
    assert!(!p.progressed);
    assert!(p.next_wake.is_some_and(|w| w.millis() > t.now), "{p:?}");
}

#[test]
fn telnet_noise_beyond_the_peek_buffer_is_an_over_long_line() {
    let mut t = T::login();
    let mut line = b"NOOP".to_vec();
    for _ in 0..300 {
        line.extend_from_slice(b"\xff\xf1");
    }
    line.extend_from_slice(b"\r\nPWD\r\n");
    let r = t.send_raw(&line);
    assert!(r.starts_with("500 Command line too long.\r\n"), "{r}");
    assert!(
        r.ends_with("257 \"/\" is the current directory.\r\n"),
        "{r}"
    );
}

#[test]
fn a_line_filling_the_buffer_is_too_long_however_it_is_split() {
    let mut t = T::login();
    let full = format!("NOOP{}", " ".repeat(crate::MAX_LINE - 4));
    assert_eq!(
        t.send_raw(full.as_bytes()),
        "500 Command line too long.\r\n"
    );
    assert_eq!(t.send_raw(b"\r\n"), "");
    let r = t.send_raw(format!("{full}\r\nNOOP\r\n").as_bytes());
    assert_eq!(r, "500 Command line too long.\r\n200 NOOP ok.\r\n");
    let fits = format!("NOOP{}", " ".repeat(crate::MAX_LINE - 5));
    assert_eq!(t.send_raw(fits.as_bytes()), "");
    assert_eq!(t.send_raw(b"\r\n"), "200 NOOP ok.\r\n");
}

#[test]
fn reversed_passive_port_range_is_used_as_a_range() {
    let mut t = T::with(
        Config {
            pasv_ports: (50009, 50000),
            ..config()
        },
        fixture(),
    );
    t.expect("USER test", "331");
    t.expect("PASS test", "230");
    let r = t.expect("EPSV", "229");
    let port: u16 = r[r.find("|||").unwrap() + 3..r.rfind('|').unwrap()]
        .parse()
        .unwrap();
    assert!((50000..=50009).contains(&port));
}

// ---- session lifecycle ---------------------------------------------------------------

#[test]
fn quit_is_221_and_closes() {
    let mut t = T::login();
    t.expect("QUIT", "221 Goodbye.");
    assert!(t.closed(t.ctrl));
    assert_eq!(t.server.sessions(), 0);
}

#[test]
fn client_past_the_limit_gets_421_and_later_gets_in() {
    let mut t = T::new();
    let second = t.connect();
    let third = t.connect();
    assert_eq!(
        t.net.take(third),
        "421 Too many connections (2), try again later.\r\n"
    );
    assert!(t.closed(third));
    assert!(t.net.take(second).starts_with("220 "));
    t.expect("QUIT", "221");
    let fourth = t.connect();
    assert!(t.net.take(fourth).starts_with("220 "));
}

#[test]
fn idle_session_times_out_with_421() {
    let mut t = T::login();
    t.advance(59_999);
    assert_eq!(t.net.take(t.ctrl), "");
    t.advance(1);
    assert_eq!(
        t.net.take(t.ctrl),
        "421 Timeout: closing control connection.\r\n"
    );
    assert!(t.closed(t.ctrl));
}

#[test]
fn poll_reports_the_next_deadline() {
    let mut t = T::login();
    let p = t
        .server
        .poll(Instant::from_millis(t.now), &mut t.net, &mut t.fs);
    assert_eq!(p.next_wake, Some(Instant::from_millis(60_000)));
    assert!(!p.progressed);
}

#[test]
fn client_disconnect_frees_everything() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("RETR sub/file.bin", "150");
    let _ = d;
    t.net.socks[t.ctrl].reset = true;
    t.run();
    assert_eq!(t.server.sessions(), 0);
    assert_eq!(t.fs.open_files(), 0);
    assert!(
        t.net
            .socks
            .iter()
            .all(|s| s.released || s.state == SockState::Established && s.reset)
    );
}

#[test]
fn shutdown_sends_421() {
    let mut t = T::login();
    t.server.shutdown(&mut t.net, &mut t.fs);
    assert_eq!(t.net.take(t.ctrl), "421 Server shutting down.\r\n");
    assert!(t.closed(t.ctrl));
}

#[test]
fn every_storage_error_has_its_reply() {
    use crate::proto::reply::ReplyCode as R;
    use storage::Error as E;
    let table = [
        (E::NotFound, R::FileUnavailable),
        (E::NotADirectory, R::FileUnavailable),
        (E::IsADirectory, R::FileUnavailable),
        (E::AlreadyExists, R::FileUnavailable),
        (E::DirectoryNotEmpty, R::FileUnavailable),
        (E::PermissionDenied, R::FileUnavailable),
        (E::InvalidName, R::NameNotAllowed),
        (E::NameTooLong, R::NameNotAllowed),
        (E::InvalidOffset, R::InvalidRestart),
        (E::Busy, R::FileBusy),
        (E::Io, R::LocalError),
        (E::NotReady, R::LocalError),
    ];
    for (e, r) in table {
        assert_eq!(super::storage_reply(e, false), r, "{e:?}");
    }
    assert_eq!(
        super::storage_reply(E::NoSpace, true),
        R::InsufficientStorage
    );
    assert_eq!(super::storage_reply(E::NoSpace, false), R::ExceededStorage);
}

#[test]
fn session_state_stays_under_one_kilobyte() {
    let size = core::mem::size_of::<super::Session<u8, [u8; 16]>>();
    assert!(size < 1024, "Session is {size} bytes");
}

#[test]
fn canonical_is_cores_to_canonical() {
    for a in [
        "192.0.2.1",
        "::1",
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "2001:db8::1",
        "::ffff:0:0",
        "0.0.0.0",
    ] {
        let ip: core::net::IpAddr = a.parse().unwrap();
        let bits = super::ip_bits(&core::net::SocketAddr::new(ip, 21));
        // The engine's canonical form is core's, as 128 bits.
        match ip.to_canonical() {
            core::net::IpAddr::V4(v4) => {
                assert!(super::is_v4(bits), "{a}");
                assert_eq!(core::net::Ipv4Addr::from_bits(bits as u32), v4, "{a}");
            }
            core::net::IpAddr::V6(v6) => {
                assert!(!super::is_v4(bits), "{a}");
                assert_eq!(bits, v6.to_bits(), "{a}");
            }
        }
        // An address and its IPv4-mapped form compare equal, as in core.
        for b in [
            "192.0.2.1",
            "::ffff:192.0.2.1",
            "::192.0.2.1",
            "0.0.0.0",
            "::ffff:0:0",
        ] {
            let other: core::net::IpAddr = b.parse().unwrap();
            let same = bits == super::ip_bits(&core::net::SocketAddr::new(other, 0));
            assert_eq!(
                same,
                ip.to_canonical() == other.to_canonical(),
                "{a} vs {b}"
            );
        }
    }
}

#[test]
fn crlf_conversion_carries_a_cr_across_chunks() {
    let (mut cr, mut dst) = (false, [0u8; 16]);
    let n = super::to_crlf(b"a\nb\r", &mut dst, &mut cr);
    assert_eq!(&dst[..n], b"a\r\nb\r");
    assert!(cr);
    // The LF after a CR that ended the last chunk is not doubled.
    let n = super::to_crlf(b"\nc\n", &mut dst, &mut cr);
    assert_eq!(&dst[..n], b"\nc\r\n");
    assert!(!cr);

    let mut cr = false;
    let mut buf = *b"x\r\ny\rz\r";
    let n = super::from_crlf(&mut buf, &mut cr);
    assert_eq!(&buf[..n], b"x\ny\rz");
    assert!(cr, "a CR at the end waits for the next chunk");
}

#[test]
fn stat_reply_is_exact() {
    let mut t = T::login();
    assert_eq!(
        t.cmd("STAT"),
        "211-FTP server status:\r\n Connected to 192.0.2.2\r\n Logged in as test\r\n \
         TYPE: ASCII, STRUcture: File, MODE: Stream\r\n Sessions: 1 of 2\r\n \
         Open files: 0\r\n211 End of status.\r\n"
    );
}

#[test]
fn stat_with_a_very_long_user_name_is_still_well_formed() {
    // The lines before the last are written as one piece, cut at the
    // writer's limit: the final line must still come whole.
    let user: &'static str = Box::leak("u".repeat(480).into_boxed_str());
    let accounts: &'static [Account<'static>] = Box::leak(Box::new([Account {
        user,
        pass: "p",
        root: "/",
        writable: false,
    }]));
    let mut t = T::with(
        Config {
            accounts,
            ..config()
        },
        fixture(),
    );
    t.expect(&format!("USER {user}"), "331 ");
    t.expect("PASS p", "230 ");
    let r = t.cmd("STAT");
    assert!(r.starts_with("211-FTP server status:\r\n"), "{r}");
    assert!(r.ends_with("\r\n211 End of status.\r\n"), "{r}");
    for line in r.split_terminator("\r\n").skip(1) {
        assert!(
            line.starts_with(' ') || line == "211 End of status.",
            "{line:?}"
        );
        assert!(!line.contains('\r') && !line.contains('\n'));
    }
}

#[test]
fn stat_of_a_file_is_exact() {
    let mut t = T::login();
    let r = t.cmd("STAT readme.txt");
    assert_eq!(
        r,
        "213-Status of /readme.txt:\r\n -rw-r--r-- 1 ftp ftp           12 Jan  2  2024 readme.txt\r\n\
         213 End of status.\r\n"
    );
}

#[test]
fn opts_mlst_takes_trimmed_facts_in_any_case_between_semicolons() {
    let mut t = T::login();
    assert_eq!(
        t.cmd("OPTS MLST  Size ; MODIFY;;bogus;perm"),
        "200 MLST OPTS size;modify;perm;\r\n"
    );
    assert_eq!(t.cmd("OPTS MLST ;"), "200 MLST OPTS \r\n");
    assert_eq!(t.cmd("OPTS MLST type"), "200 MLST OPTS type;\r\n");
}

#[test]
fn help_lists_the_implemented_verbs_twelve_a_line() {
    let mut t = T::new();
    let r = t.cmd("HELP");
    let lines: Vec<&str> = r.split_terminator("\r\n").collect();
    assert_eq!(lines[0], "214-The following commands are recognized:");
    assert_eq!(*lines.last().unwrap(), "214 Help OK.");
    let body = &lines[1..lines.len() - 1];
    assert_eq!(body.len(), 4, "{r}");
    assert_eq!(
        body[0],
        " ABOR ACCT ALLO APPE CDUP CLNT CWD DELE EPRT EPSV FEAT HELP"
    );
    for (i, l) in body.iter().enumerate() {
        let n = l.split(' ').skip(1).count();
        assert_eq!(n, if i < 3 { 12 } else { 10 }, "{l:?}");
    }
    assert!(r.ends_with(" XPWD XRMD\r\n214 Help OK.\r\n"), "{r}");
}

#[test]
fn allowed_before_login_is_the_bit_set() {
    for k in 0..64u8 {
        assert_eq!(
            super::allowed_before_login(k),
            super::BEFORE_LOGIN & (1u64 << k) != 0,
            "verb kind {k}"
        );
    }
    assert!(super::allowed_before_login(crate::proto::command::CLNT));
    assert!(!super::allowed_before_login(crate::proto::command::RETR));
}

#[test]
fn is_within_compares_whole_components() {
    use crate::path::PathBuf;
    let p = |s: &str| PathBuf::from_normalised(s).unwrap();
    let within = |a: &str, b: &str| super::is_within(&p(a), &p(b));
    assert!(within("/", "/"));
    assert!(within("/a", "/"));
    assert!(within("/a", "/a"));
    assert!(within("/a/b", "/a"));
    assert!(within("/a/b/c", "/a/b"));
    assert!(!within("/ab", "/a"));
    assert!(!within("/a", "/a/b"));
    assert!(!within("/", "/a"));
    assert!(!within("/b/a", "/a"));
}

#[test]
fn user_during_a_transfer_waits_and_leaves_the_upload_whole() {
    let mut t = T::login();
    let d = t.pasv();
    t.expect("STOR u.bin", "150");
    assert_eq!(t.cmd("USER test"), "", "USER waits for the transfer");
    t.net.socks[d].rx.extend(b"abc");
    t.net.socks[d].fin = true;
    t.run();
    assert_eq!(
        t.net.take(t.ctrl),
        "226 Transfer complete (3 bytes).\r\n331 Please specify the password.\r\n"
    );
}

#[test]
fn read_only_change_is_denied_before_its_path_is_looked_at() {
    let mut t = T::new();
    t.expect("USER anonymous", "331");
    t.expect("PASS me@example.com", "230");
    // Too long to resolve, and the root itself: still 550, not 553.
    let long = "a/".repeat(200);
    t.expect(&format!("MKD {long}"), "550 Permission denied.");
    t.expect("RMD /", "550 Permission denied.");
    t.expect("MKD /", "550 Permission denied.");
    t.expect("CWD /", "250 Directory changed to /.");
}

// ---- the table of fixed replies ----------------------------------------------

#[test]
fn every_fixed_reply_has_its_own_code_and_text() {
    use super::{Msg, R};
    // As many texts as codes, none empty: the NUL-separated literal and
    // the code table stay in step with the variants.
    assert_eq!(Msg::TEXTS.matches('\0').count(), Msg::CODES.len());
    assert!(
        !Msg::TEXTS
            .split('\0')
            .take(Msg::CODES.len())
            .any(str::is_empty)
    );
    // The first, a middle and the last variant.
    assert_eq!(Msg::PleaseLogin.code(), R::NotLoggedIn);
    assert_eq!(Msg::PleaseLogin.text(), "Please login with USER and PASS.");
    assert_eq!(Msg::TypeI.code(), R::Ok);
    assert_eq!(Msg::TypeI.text(), "Type set to I.");
    assert_eq!(Msg::NothingToAbort.code(), R::DataOpenNoTransfer);
    assert_eq!(Msg::NothingToAbort.text(), "No transfer to abort.");
    assert_eq!(Msg::NothingToAbort as usize, Msg::CODES.len() - 1);
}

// ---- the end of a transfer (close_transfer) ------------------------------------

#[test]
fn a_finished_transfer_closes_its_data_connection_and_waits_for_room_to_say_226() {
    let mut t = T::login();
    t.expect("TYPE I", "200");
    let d = t.pasv();
    // The data connection takes nothing until the client stops reading
    // its control connection: then the `226` waits.
    let c = t.ctrl;
    t.net.socks[d].cap = 0;
    t.expect("RETR /readme.txt", "150");
    t.net.socks[c].cap = 100;
    t.net.socks[d].cap = 64 * 1024;
    t.run();
    assert_eq!(t.net.take(d), "hello\nworld\n");
    assert_eq!(t.net.take(c), "", "no reply without room");
    assert_eq!(t.fs.open_files(), 1, "the transfer waits, its file open");
    t.net.socks[c].cap = 64 * 1024;
    t.run();
    assert_eq!(t.net.take(c), "226 Transfer complete (12 bytes).\r\n");
    assert!(t.closed(d) && !t.net.socks[d].reset, "closed, not reset");
    assert_eq!(t.fs.open_files(), 0);
    // A failed one resets its data connection and closes its file.
    let d = t.pasv();
    t.expect("STOR x.bin", "150");
    t.net.socks[d].reset = true;
    t.run();
    assert_eq!(
        t.net.take(c),
        "426 Data connection lost; transfer aborted. (0 bytes transferred)\r\n"
    );
    assert!(t.closed(d));
    assert_eq!(t.fs.open_files(), 0);
    t.expect("ABOR", "225 No transfer to abort.");
}

// ---- byte helpers (no `memcmp`) ------------------------------------------------

#[test]
fn starts_with_compares_the_prefix_byte_by_byte() {
    use super::starts_with;
    assert!(starts_with(b"abc", b""));
    assert!(starts_with(b"abc", b"ab"));
    assert!(starts_with(b"abc", b"abc"));
    assert!(!starts_with(b"abc", b"abd"));
    assert!(!starts_with(b"ab", b"abc"));
    assert!(!starts_with(b"", b"-"));
}

#[test]
fn skip_options_drops_dash_words_only() {
    use super::skip_options;
    assert_eq!(skip_options("-la /pub"), "/pub");
    assert_eq!(skip_options("  -l -a  dir"), "dir");
    assert_eq!(skip_options("-la"), "");
    assert_eq!(skip_options("dir -l"), "dir -l");
    assert_eq!(skip_options(""), "");
}

#[test]
fn nth_picks_one_text_of_a_nul_separated_table() {
    use crate::storage::nth;
    const T: &str = "zero\0one\0\0three\0";
    assert_eq!(nth(T, 0), "zero");
    assert_eq!(nth(T, 1), "one");
    assert_eq!(nth(T, 2), "");
    assert_eq!(nth(T, 3), "three");
    assert_eq!(nth(T, 4), "");
    assert_eq!(nth(T, 99), "");
}

// ---- the family replies (one template, two codes) ----------------------------

#[test]
fn wrong_address_family_names_the_one_to_use() {
    let mut t = T::login();
    t.expect("EPSV 2", "522 Network protocol not supported, use (1).\r\n");
    t.expect(
        "EPRT |2|::1|50000|",
        "522 Network protocol not supported, use (1).\r\n",
    );
    // A client on IPv6: PORT (IPv4 only) gets 504, EPRT |1| 522, both
    // naming family 2.
    let ip6: core::net::IpAddr = "2001:db8::2".parse().unwrap();
    let s = t.net.client_connects(ip6, 40000);
    t.run();
    assert!(t.net.take(s).starts_with("220 "));
    t.ctrl = s;
    t.expect("USER test", "331 ");
    t.expect("PASS test", "230 ");
    t.expect(
        "PORT 192,0,2,2,195,80",
        "504 Network protocol not supported, use (2).\r\n",
    );
    t.expect(
        "EPRT |1|192.0.2.2|50000|",
        "522 Network protocol not supported, use (2).\r\n",
    );
}

#[test]
fn during_a_transfer_only_abor_quit_noop_and_stat_are_let_by() {
    use crate::proto::command as verb;
    for k in 0..64u8 {
        assert_eq!(
            super::in_set(super::DURING_TRANSFER, k),
            matches!(k, verb::ABOR | verb::QUIT | verb::NOOP | verb::STAT),
            "verb kind {k}"
        );
    }
}

#[test]
fn stat_and_mlst_of_a_file_are_three_lines_each() {
    let mut t = T::login();
    assert_eq!(
        t.cmd("STAT readme.txt"),
        "213-Status of /readme.txt:\r\n -rw-r--r-- 1 ftp ftp           12 Jan  2  2024 readme.txt\r\n213 End of status.\r\n"
    );
    assert_eq!(
        t.cmd("MLST /sub/file.bin"),
        "250-Listing /sub/file.bin\r\n type=file;size=5000;modify=20240102030405;perm=adfrw; /sub/file.bin\r\n250 End.\r\n"
    );
}
