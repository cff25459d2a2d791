//! `harness replay FILE`: play a captured session's client side against a
//! fresh target and put the replies side by side with the captured ones.
//!
//! Accepted inputs:
//! - a pcap or pcapng capture (see [`crate::capture`]);
//! - a plain-text control-channel log: this harness's transcripts (`C:` /
//!   `S:`), FileZilla's (`Command:` / `Response:`), curl -v (`> ` / `< `),
//!   lftp's debug log (`---> ` / `<--- `), Python ftplib's debug output
//!   (`*cmd*` / `*resp*`);
//! - a scenario file: played as it is, its `<` lines are the expectations.
//!
//! Before the replay the target gets the files the captured client reads
//! (RETR, SIZE, MDTM, DELE, RNFR) and the directories it enters, with the
//! captured bytes where the capture holds the data connection and filler of
//! the captured size otherwise, unless the session made them itself.
//! Uploads send the captured bytes, or filler of the captured size.
//!
//! Replies agree by class (1yz..5yz) by default, by exact code with
//! `--strict`, by code and redacted text with `--text`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::client::{self, Control, Data, Reply};
use crate::fixture::{Entry, Tree, filler};
use crate::redact::redact;
use crate::scenario::{Direction, Scenario, is_transfer_command};
use crate::target::{Context, Target};

/// How replies are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    Class,
    Code,
    Text,
}

/// What travelled on a transfer's data connection in the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataCapture {
    pub dir: Direction,
    /// The bytes, when the capture holds the whole data connection.
    pub bytes: Option<Vec<u8>>,
    /// Their number, when known.
    pub len: Option<u64>,
}

/// One command and the replies it got (the greeting has no command).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Control connection number, in order of opening.
    pub conn: usize,
    pub command: Option<String>,
    /// (code, lines) of every reply.
    pub replies: Vec<(u16, Vec<String>)>,
    pub data: Option<DataCapture>,
}

/// A captured session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    pub exchanges: Vec<Exchange>,
    pub connections: usize,
}

/// What `replay` can play.
pub enum Input {
    Session(Session),
    Scenario(Scenario),
}

/// Read a capture, a log or a scenario.
pub fn load(path: &Path) -> Result<Input> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.display().to_string();
    let magic = bytes
        .get(..4)
        .map(|m| u32::from_le_bytes(m.try_into().unwrap()))
        .unwrap_or(0);
    if matches!(
        magic,
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0a0d_0d0a
    ) {
        return Ok(Input::Session(crate::capture::session_from_pcap(
            &bytes, &name,
        )?));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{name} is neither a pcap/pcapng capture nor a text log"))?;
    if text.lines().any(|l| l.trim() == "---")
        && text.lines().any(|l| l.starts_with("description:"))
    {
        let s = Scenario::parse(&name, &text)?;
        return Ok(Input::Scenario(s));
    }
    Ok(Input::Session(session_from_text(&text, &name)?))
}

/// Parse a plain-text control-channel log.
pub fn session_from_text(text: &str, name: &str) -> Result<Session> {
    use regex::Regex;
    let cmd_res = [
        Regex::new(r"^\s*(?:\[(\S+)\]\s*)?C:\s?(.*)$").unwrap(),
        Regex::new(r"(?:^|\s)()Command:\s*(.*)$").unwrap(),
        Regex::new(r"^()---> (.*)$").unwrap(),
        Regex::new(r"^()> (.*)$").unwrap(),
        Regex::new(r"^()\*cmd\* '(.*)'$").unwrap(),
    ];
    let resp_res = [
        Regex::new(r"^\s*(?:\[(\S+)\]\s*)?S:\s?(.*)$").unwrap(),
        Regex::new(r"(?:^|\s)()Response:\s*(.*)$").unwrap(),
        Regex::new(r"^()<--- (.*)$").unwrap(),
        Regex::new(r"^()< (.*)$").unwrap(),
        Regex::new(r"^()\*resp\* '(.*)'$").unwrap(),
    ];
    let data_re = Regex::new(r"^\s*(?:\[(\S+)\]\s*)?D: (?:received|sent) (\d+) bytes").unwrap();
    let mut conns: Vec<String> = Vec::new();
    let conn_of = |tag: &str, conns: &mut Vec<String>| -> usize {
        match conns.iter().position(|c| c == tag) {
            Some(i) => i,
            None => {
                conns.push(tag.to_string());
                conns.len() - 1
            }
        }
    };
    let mut ex: Vec<Exchange> = Vec::new();
    // Reply lines still being grouped, per connection.
    let mut open_multi: HashMap<usize, u16> = HashMap::new();
    let mut last_of: HashMap<usize, usize> = HashMap::new();
    for line in text.lines() {
        if let Some(c) = cmd_res.iter().find_map(|r| r.captures(line)) {
            let conn = conn_of(c.get(1).map_or("", |m| m.as_str()), &mut conns);
            ex.push(Exchange {
                conn,
                command: Some(c[2].to_string()),
                replies: vec![],
                data: None,
            });
            last_of.insert(conn, ex.len() - 1);
            open_multi.remove(&conn);
        } else if let Some(c) = resp_res.iter().find_map(|r| r.captures(line)) {
            let conn = conn_of(c.get(1).map_or("", |m| m.as_str()), &mut conns);
            let l = c[2].to_string();
            let idx = match last_of.get(&conn) {
                Some(&i) => i,
                None => {
                    ex.push(Exchange {
                        conn,
                        command: None,
                        replies: vec![],
                        data: None,
                    });
                    last_of.insert(conn, ex.len() - 1);
                    ex.len() - 1
                }
            };
            let b = l.as_bytes();
            let code = if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
                l[..3].parse().unwrap_or(0)
            } else {
                0
            };
            match open_multi.get(&conn).copied() {
                Some(open) => {
                    ex[idx].replies.last_mut().unwrap().1.push(l.clone());
                    if code == open && b.get(3) == Some(&b' ') {
                        open_multi.remove(&conn);
                    }
                }
                None => {
                    ex[idx].replies.push((code, vec![l.clone()]));
                    if b.get(3) == Some(&b'-') {
                        open_multi.insert(conn, code);
                    }
                }
            }
        } else if let Some(c) = data_re.captures(line) {
            let conn = conn_of(c.get(1).map_or("", |m| m.as_str()), &mut conns);
            if let Some(&i) = last_of.get(&conn) {
                if let Some(verb) = ex[i].command.as_deref().and_then(|c| c.split(' ').next()) {
                    if let Some(dir) = is_transfer_command(verb) {
                        ex[i].data = Some(DataCapture {
                            dir,
                            bytes: None,
                            len: c[2].parse().ok(),
                        });
                    }
                }
            }
        }
    }
    if !ex.iter().any(|e| e.command.is_some()) {
        bail!(
            "no FTP commands recognised in {name}: expected a pcap/pcapng capture, or a log with lines such as `C: USER x` / `S: 331 ...`, \
             FileZilla's `Command:` / `Response:`, curl -v's `> ` / `< `, or lftp's `---> ` / `<--- `"
        );
    }
    // Sizes announced in replies, where the log has no data lines.
    let bytes_re = Regex::new(r"\((\d+) bytes\)").unwrap();
    for e in &mut ex {
        let Some(verb) = e.command.as_deref().and_then(|c| c.split(' ').next()) else {
            continue;
        };
        let Some(dir) = is_transfer_command(verb) else {
            continue;
        };
        if e.data.is_none() && e.replies.iter().any(|r| (100..200).contains(&r.0)) {
            let len = e
                .replies
                .iter()
                .rev()
                .find_map(|r| bytes_re.captures(&r.1[0]).and_then(|c| c[1].parse().ok()));
            e.data = Some(DataCapture {
                dir,
                bytes: None,
                len,
            });
        }
    }
    Ok(Session {
        name: name.to_string(),
        connections: conns.len(),
        exchanges: ex,
    })
}

/// Resolve `arg` against `cwd` the way a server confined to `/` does.
pub fn resolve(cwd: &str, arg: &str) -> String {
    let mut parts: Vec<&str> = if arg.starts_with('/') {
        vec![]
    } else {
        cwd.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in arg.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn split_cmd(cmd: &str) -> (String, String) {
    let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
    let arg = cmd.get(verb.len() + 1..).unwrap_or("").to_string();
    (verb, arg)
}

/// The captured server's home directory: the first `PWD` reply of the
/// session. A server that shows the real path (vsftpd without chroot:
/// `/srv/ftp`) is replayed as if that path were `/`.
pub fn captured_home(s: &Session) -> Option<String> {
    s.exchanges
        .iter()
        .find(|e| {
            e.command
                .as_deref()
                .is_some_and(|c| c.eq_ignore_ascii_case("PWD") || c.eq_ignore_ascii_case("XPWD"))
        })
        .and_then(|e| e.replies.last())
        .filter(|r| r.0 == 257)
        .and_then(|r| r.1[0].split('"').nth(1).map(|p| p.replace("\"\"", "\"")))
        .filter(|h| h != "/" && h.starts_with('/'))
}

/// `path` with the captured home replaced by `/`.
pub fn rebase(path: &str, home: Option<&str>) -> String {
    match home {
        Some(h) if path == h => "/".to_string(),
        Some(h) if path.starts_with(h) && path[h.len()..].starts_with('/') => {
            path[h.len()..].to_string()
        }
        _ => path.to_string(),
    }
}

/// The path argument of a listing command, options (`-la`) removed.
fn list_path(arg: &str) -> &str {
    let a = arg.trim();
    if a.starts_with('-') {
        a.split_once(' ').map_or("", |(_, p)| p.trim())
    } else {
        a
    }
}

/// The files and directories a fresh target needs for this session.
pub fn needed_tree(s: &Session) -> Tree {
    let home = captured_home(s);
    let mut cwd: HashMap<usize, String> = HashMap::new();
    let mut made: BTreeSet<String> = BTreeSet::new(); // created by the session
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut rnfr: HashMap<usize, String> = HashMap::new();
    for e in &s.exchanges {
        let Some(cmd) = &e.command else { continue };
        let (verb, arg) = split_cmd(cmd);
        let ok = e
            .replies
            .last()
            .is_some_and(|r| r.0 / 100 == 2 || r.0 / 100 == 3);
        let here = cwd.entry(e.conn).or_insert_with(|| "/".to_string()).clone();
        let path = resolve(&here, &rebase(arg.trim(), home.as_deref()));
        let need_file = |path: &str,
                         data: Option<Vec<u8>>,
                         files: &mut Vec<(String, Vec<u8>)>,
                         made: &BTreeSet<String>| {
            if !made.contains(path) && !files.iter().any(|(p, _)| p == path) && path != "/" {
                files.push((path.to_string(), data.unwrap_or_default()));
            }
        };
        match verb.as_str() {
            "PWD" | "XPWD" if ok => {
                if let Some(p) = e.replies.last().and_then(|r| r.1[0].split('"').nth(1)) {
                    cwd.insert(e.conn, rebase(&p.replace("\"\"", "\""), home.as_deref()));
                }
            }
            "CWD" | "XCWD" if ok => {
                if !made.contains(&path) && path != "/" {
                    dirs.insert(path.clone());
                }
                cwd.insert(e.conn, path);
            }
            "CDUP" | "XCUP" if ok => {
                cwd.insert(e.conn, resolve(&here, ".."));
            }
            "RETR" if ok => {
                let data = e
                    .data
                    .as_ref()
                    .and_then(|d| d.bytes.clone().or_else(|| d.len.map(filler)));
                need_file(&path, data, &mut files, &made);
            }
            "SIZE" if ok => {
                if let Some(n) = e
                    .replies
                    .last()
                    .and_then(|r| r.1[0].get(4..))
                    .and_then(|t| t.trim().parse::<u64>().ok())
                {
                    sizes.insert(path.clone(), n);
                }
                need_file(&path, None, &mut files, &made);
            }
            "MDTM" | "DELE" if ok => need_file(&path, None, &mut files, &made),
            "RNFR" if ok => {
                need_file(&path, None, &mut files, &made);
                rnfr.insert(e.conn, path);
            }
            "RNTO" if ok => {
                made.insert(path);
            }
            "RMD" | "XRMD" if ok && !made.contains(&path) => {
                dirs.insert(path);
            }
            "MKD" | "XMKD" | "STOR" | "APPE" if ok => {
                made.insert(path);
            }
            "LIST" | "NLST" | "MLSD" if ok && !list_path(&arg).is_empty() => {
                let p = resolve(&here, list_path(&arg));
                if !made.contains(&p) && !files.iter().any(|(f, _)| *f == p) && p != "/" {
                    dirs.insert(p);
                }
            }
            _ => {}
        }
    }
    // Files sized by SIZE but not downloaded get filler of that size.
    for (p, data) in &mut files {
        if data.is_empty() {
            if let Some(&n) = sizes.get(p) {
                *data = filler(n);
            }
        }
    }
    // Parents of everything, as directories, parents first.
    let mut all_dirs: BTreeSet<String> = BTreeSet::new();
    for p in dirs
        .iter()
        .cloned()
        .chain(files.iter().map(|(f, _)| f.clone()))
    {
        let mut cur = p.as_str();
        while let Some((parent, _)) = cur.rsplit_once('/') {
            if parent.is_empty() {
                break;
            }
            all_dirs.insert(parent.to_string());
            cur = parent;
        }
    }
    all_dirs.extend(dirs);
    // A path that is a file must not also be a directory.
    let file_set: BTreeSet<&String> = files.iter().map(|(p, _)| p).collect();
    let mut dirs: Vec<String> = all_dirs
        .into_iter()
        .filter(|d| !file_set.contains(d))
        .collect();
    dirs.sort_by_key(|d| (d.matches('/').count(), d.clone()));
    let mut entries: Vec<Entry> = dirs
        .into_iter()
        .map(|d| Entry::Dir(d.trim_start_matches('/').to_string()))
        .collect();
    entries.extend(
        files
            .into_iter()
            .map(|(p, b)| Entry::File(p.trim_start_matches('/').to_string(), b)),
    );
    Tree {
        name: format!("captured from {}", s.name),
        entries,
    }
}

/// One line of the side-by-side view.
#[derive(Clone, Debug)]
pub struct Row {
    pub conn: usize,
    pub command: Option<String>,
    pub captured: Vec<(u16, String)>,
    pub replayed: Vec<(u16, String)>,
    pub agree: bool,
    pub notes: Vec<String>,
}

pub struct Outcome {
    pub rows: Vec<Row>,
    pub mode: Compare,
    pub connections: usize,
    pub elapsed: Duration,
    /// For scenario inputs: the player's transcript and failures.
    pub scenario: Option<(String, Vec<String>)>,
    /// What was created on the target before the replay.
    pub prepared: Vec<String>,
}

fn agree(mode: Compare, a: &[(u16, String)], b: &[(u16, String)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| match mode {
            Compare::Class => x.0 / 100 == y.0 / 100,
            Compare::Code => x.0 == y.0,
            Compare::Text => x.0 == y.0 && redact(&x.1) == redact(&y.1),
        })
}

fn cut(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s:<w$}")
    } else {
        format!("{}…", s.chars().take(w - 1).collect::<String>())
    }
}

impl Outcome {
    pub fn agrees(&self) -> bool {
        match &self.scenario {
            Some((_, failures)) => failures.is_empty(),
            None => self.rows.iter().all(|r| r.agree),
        }
    }

    /// Captured replies on the left, the target's on the right, `≠` where
    /// they disagree.
    pub fn side_by_side(&self) -> String {
        if let Some((t, _)) = &self.scenario {
            return t.clone();
        }
        let w = 46;
        let mut s = String::new();
        if !self.prepared.is_empty() {
            s.push_str(&format!(
                "created on the target first: {}\n",
                self.prepared.join(", ")
            ));
        }
        s.push_str(&format!("  {}   {}\n", cut("captured", w), "replayed"));
        for r in &self.rows {
            let tag = if self.connections > 1 {
                format!("[{}] ", r.conn + 1)
            } else {
                String::new()
            };
            match &r.command {
                Some(c) => s.push_str(&format!("{tag}C: {c}\n")),
                None => s.push_str(&format!("{tag}(greeting)\n")),
            }
            let n = r.captured.len().max(r.replayed.len());
            for i in 0..n {
                let l = r.captured.get(i).map_or(String::new(), |x| redact(&x.1));
                let rr = r.replayed.get(i).map_or(String::new(), |x| redact(&x.1));
                let mark = if r.agree { ' ' } else { '≠' };
                s.push_str(&format!("{mark} {}   {}\n", cut(&l, w), rr));
            }
            for note in &r.notes {
                s.push_str(&format!("    {note}\n"));
            }
        }
        s
    }

    pub fn summary(&self) -> String {
        if let Some((_, f)) = &self.scenario {
            return if f.is_empty() {
                "replay agrees: every expectation of the scenario held".into()
            } else {
                format!(
                    "replay disagrees: {} expectation(s) failed:\n{}",
                    f.len(),
                    f.iter()
                        .map(|x| format!("  !! {x}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            };
        }
        let bad = self.rows.iter().filter(|r| !r.agree).count();
        let how = match self.mode {
            Compare::Class => "reply class",
            Compare::Code => "reply code (--strict)",
            Compare::Text => "reply code and text (--text)",
        };
        if bad == 0 {
            format!(
                "replay agrees: {} exchanges, same {how} everywhere ({:.2}s)",
                self.rows.len(),
                self.elapsed.as_secs_f64()
            )
        } else {
            format!(
                "replay disagrees: {bad} of {} exchanges differ in {how}",
                self.rows.len()
            )
        }
    }
}

struct LiveConn {
    ctl: Control,
    data: Option<Data>,
}

/// Replay against a freshly started target.
pub async fn replay(
    ctx: &Context,
    target: &Target,
    input: &Input,
    mode: Compare,
    login: Option<&(String, String)>,
) -> Result<Outcome> {
    let start = Instant::now();
    match input {
        Input::Scenario(sc) => {
            let dir = crate::target::workspace_root().join("scenarios");
            let tree = crate::run::fixture_for(sc, &dir).unwrap_or_default();
            let server = target.start(ctx, &tree, None).await?;
            let played = crate::target::play_on(&server, sc, &tree, false).await;
            server.stop().await;
            let played = played?;
            Ok(Outcome {
                rows: vec![],
                mode,
                connections: 1,
                elapsed: start.elapsed(),
                scenario: Some((played.transcript.render(false), played.failures())),
                prepared: vec![],
            })
        }
        Input::Session(s) => {
            let tree = needed_tree(s);
            let server = target
                .start(ctx, &tree, None)
                .await
                .context("starting the target with the captured files")?;
            // A board on TAP is reached from inside its namespace.
            let rows = match server.netns.clone() {
                None => play_session(s, server.addr, login, captured_home(s).as_deref()).await,
                Some(ns) => {
                    let (s2, login2, addr) = (s.clone(), login.cloned(), server.addr);
                    let played = crate::netns::run_in(&ns, move || async move {
                        play_session(&s2, addr, login2.as_ref(), captured_home(&s2).as_deref())
                            .await
                    })
                    .await;
                    match played {
                        Ok(rows) => rows,
                        Err(e) => {
                            server.stop().await;
                            return Err(e);
                        }
                    }
                }
            };
            server.stop().await;
            let prepared = tree
                .entries
                .iter()
                .map(|e| match e {
                    Entry::Dir(d) => format!("/{d}/"),
                    Entry::File(f, b) => format!("/{f} ({} bytes)", b.len()),
                })
                .collect();
            Ok(Outcome {
                rows,
                mode,
                connections: s.connections,
                elapsed: start.elapsed(),
                scenario: None,
                prepared,
            })
            .map(|mut o| {
                for r in &mut o.rows {
                    r.agree = agree(mode, &r.captured, &r.replayed) && r.agree;
                }
                o
            })
        }
    }
}

fn firsts(replies: &[(u16, Vec<String>)]) -> Vec<(u16, String)> {
    replies.iter().map(|(c, l)| (*c, l.join(" / "))).collect()
}

fn flat(r: &Reply) -> (u16, String) {
    (r.code, r.lines.join(" / "))
}

async fn play_session(
    s: &Session,
    addr: std::net::SocketAddr,
    login: Option<&(String, String)>,
    home: Option<&str>,
) -> Vec<Row> {
    let t = Duration::from_secs(10);
    let mut conns: HashMap<usize, Option<LiveConn>> = HashMap::new();
    let mut rows = Vec::new();
    for e in &s.exchanges {
        let mut row = Row {
            conn: e.conn,
            command: e.command.clone(),
            captured: firsts(&e.replies),
            replayed: vec![],
            agree: true,
            notes: vec![],
        };
        #[allow(clippy::map_entry)] // the insert depends on an await in between
        if !conns.contains_key(&e.conn) {
            // Open the connection and read its greeting.
            match Control::connect(addr, t).await {
                Ok(mut c) => {
                    let greeting = c.read_reply(t).await;
                    conns.insert(e.conn, Some(LiveConn { ctl: c, data: None }));
                    if e.command.is_none() {
                        match greeting {
                            Ok(r) => row.replayed.push(flat(&r)),
                            Err(err) => row.notes.push(format!("no greeting: {err}")),
                        }
                        rows.push(row);
                        continue;
                    }
                }
                Err(err) => {
                    row.notes.push(format!("cannot connect: {err}"));
                    row.agree = false;
                    conns.insert(e.conn, None);
                    rows.push(row);
                    continue;
                }
            }
        }
        let Some(cmd) = &e.command else {
            rows.push(row);
            continue;
        };
        let Some(Some(live)) = conns.get_mut(&e.conn) else {
            row.notes.push("connection already closed".into());
            row.agree = e.replies.is_empty();
            rows.push(row);
            continue;
        };
        let (verb, arg) = split_cmd(cmd);
        let mut wire = cmd.clone();
        if let Some(h) = home {
            // Absolute paths under the captured home become paths under `/`.
            let rebased = rebase(arg.trim(), Some(h));
            if rebased != arg.trim() && arg.trim().starts_with('/') {
                wire = format!("{verb} {rebased}");
                row.notes.push(format!(
                    "sent as `{wire}` (the captured home {h} is / here)"
                ));
            }
        }
        if let Some((u, p)) = login {
            if verb == "USER" {
                wire = format!("USER {u}");
            } else if verb == "PASS" {
                wire = format!("PASS {p}");
            }
        }
        if verb == "PORT" || verb == "EPRT" {
            match client::listen(live.ctl.local.ip()).await {
                Ok(l) => {
                    let a = l.local_addr().unwrap();
                    let arg = if verb == "PORT" {
                        client::port_arg(a).unwrap_or_default()
                    } else {
                        client::eprt_arg(a)
                    };
                    wire = format!("{verb} {arg}");
                    live.data = Some(Data::Active(l));
                }
                Err(err) => row.notes.push(format!("cannot listen: {err}")),
            }
        }
        let _ = arg;
        if let Err(err) = live.ctl.send_line(&wire).await {
            row.notes.push(format!("send failed: {err}"));
        }
        let transfer = is_transfer_command(&verb);
        let captured_none = e.replies.is_empty();
        for _ in 0..16 {
            let limit = if captured_none {
                Duration::from_millis(500)
            } else {
                t
            };
            match live.ctl.read_reply(limit).await {
                Ok(r) => {
                    row.replayed.push(flat(&r));
                    if r.is_preliminary() {
                        if let Some(dir) = transfer {
                            move_data(live, dir, e.data.as_ref(), &mut row, t).await;
                        }
                        continue;
                    }
                    if (verb == "PASV" && r.code == 227) || (verb == "EPSV" && r.code == 229) {
                        let target = if verb == "PASV" {
                            client::parse_pasv(r.text())
                        } else {
                            client::parse_epsv(r.text())
                                .map(|p| std::net::SocketAddr::new(live.ctl.peer.ip(), p))
                        };
                        match target {
                            Some(a) => match client::connect(a, t).await {
                                Ok(st) => live.data = Some(Data::Passive(st)),
                                Err(err) => row
                                    .notes
                                    .push(format!("data connection to {a} failed: {err}")),
                            },
                            None => row.notes.push("unparsable passive reply".into()),
                        }
                    }
                    if transfer.is_some() {
                        live.data = None;
                    }
                    break;
                }
                Err(client::ReadError::Timeout) if captured_none => break,
                Err(err) => {
                    row.notes.push(format!("{err}"));
                    if !matches!(err, client::ReadError::Timeout) {
                        conns.insert(e.conn, None);
                    }
                    break;
                }
            }
        }
        // A captured USER that logged in at once (a server without
        // passwords for anonymous) against a target that asks for one: send
        // a PASS, as any client would, so the rest of the session can go on.
        if verb == "USER"
            && e.replies.last().is_some_and(|r| r.0 / 100 == 2)
            && row.replayed.last().is_some_and(|r| r.0 == 331)
        {
            if let Some(Some(live)) = conns.get_mut(&e.conn) {
                let pass = login.map_or("harness@example.com", |(_, p)| p.as_str());
                if live.ctl.send_line(&format!("PASS {pass}")).await.is_ok() {
                    match live.ctl.read_reply(t).await {
                        Ok(r) => row.notes.push(format!(
                            "the target asked for a password: sent PASS, got {}",
                            r.lines[0]
                        )),
                        Err(err) => row
                            .notes
                            .push(format!("the target asked for a password: sent PASS, {err}")),
                    }
                }
            }
        }
        rows.push(row);
    }
    rows
}

async fn move_data(
    live: &mut LiveConn,
    dir: Direction,
    cap: Option<&DataCapture>,
    row: &mut Row,
    t: Duration,
) {
    let Some(data) = live.data.take() else {
        row.notes
            .push("the target opened a transfer but there is no data connection".into());
        return;
    };
    let mut stream = match data.into_stream(t, live.ctl.peer.ip()).await {
        Ok(s) => s,
        Err(err) => {
            row.notes.push(format!("data connection: {err}"));
            return;
        }
    };
    match dir {
        Direction::Download => match client::read_all(&mut stream, t).await {
            Ok(got) => {
                let note = match cap.and_then(|c| c.bytes.as_ref()) {
                    Some(want) if *want == got => {
                        format!("data: {} bytes, the same as captured", got.len())
                    }
                    Some(want) => {
                        // Listings differ in dates and sizes; files must not.
                        format!(
                            "data: {} bytes, captured {} bytes (differs)",
                            got.len(),
                            want.len()
                        )
                    }
                    None => format!("data: {} bytes", got.len()),
                };
                row.notes.push(note);
            }
            Err(err) => row.notes.push(format!("receiving data: {err}")),
        },
        Direction::Upload => {
            let bytes = cap
                .and_then(|c| c.bytes.clone().or_else(|| c.len.map(filler)))
                .unwrap_or_default();
            match client::write_all_and_close(&mut stream, &bytes, t).await {
                Ok(()) => row.notes.push(format!("data: sent {} bytes", bytes.len())),
                Err(err) => row.notes.push(format!("sending data: {err}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_home_is_rebased() {
        assert_eq!(rebase("/srv/ftp/sub/f", Some("/srv/ftp")), "/sub/f");
        assert_eq!(rebase("/srv/ftp", Some("/srv/ftp")), "/");
        assert_eq!(rebase("/srv/ftpx", Some("/srv/ftp")), "/srv/ftpx");
        assert_eq!(rebase("rel", Some("/srv/ftp")), "rel");
        let pwd = Exchange {
            conn: 0,
            command: Some("PWD".into()),
            replies: vec![(257, vec!["257 \"/srv/ftp\" is here".into()])],
            data: None,
        };
        let cwd = Exchange {
            conn: 0,
            command: Some("CWD sub".into()),
            replies: vec![(250, vec!["250 ok".into()])],
            data: None,
        };
        let s = Session {
            name: "t".into(),
            connections: 1,
            exchanges: vec![pwd, cwd],
        };
        assert_eq!(captured_home(&s).as_deref(), Some("/srv/ftp"));
        assert_eq!(needed_tree(&s).entries, vec![Entry::Dir("sub".into())]);
    }

    #[test]
    fn resolve_stays_inside() {
        assert_eq!(resolve("/", "a/b"), "/a/b");
        assert_eq!(resolve("/sub", "../../x"), "/x");
        assert_eq!(resolve("/sub", "/abs//p/"), "/abs/p");
        assert_eq!(resolve("/sub", "."), "/sub");
    }

    #[test]
    fn text_logs_of_several_clients() {
        let ours = "-- connect\nS: 220 ready\nC: USER test\nS: 331 pw\nC: PASS test\nS: 230 ok\nC: FEAT\nS: 211-Features:\nS:  SIZE\nS: 211 End\n";
        let s = session_from_text(ours, "t").unwrap();
        assert_eq!(s.exchanges.len(), 4);
        assert_eq!(s.exchanges[0].command, None);
        assert_eq!(
            s.exchanges[3].replies,
            vec![(
                211,
                vec!["211-Features:".into(), " SIZE".into(), "211 End".into()]
            )]
        );
        let fz =
            "Status:\tConnecting\nResponse:\t220 ready\nCommand:\tUSER test\nResponse:\t331 pw\n";
        assert_eq!(session_from_text(fz, "t").unwrap().exchanges.len(), 2);
        let curl = "* Trying\n< 220 ready\n> USER test\n< 331 pw\n> PASV\n< 227 Entering Passive Mode (127,0,0,1,4,1)\n";
        let s = session_from_text(curl, "t").unwrap();
        assert_eq!(s.exchanges[2].command.as_deref(), Some("PASV"));
        let lftp = "<--- 220 ready\n---> USER test\n<--- 331 pw\n";
        assert_eq!(session_from_text(lftp, "t").unwrap().exchanges.len(), 2);
        assert!(
            session_from_text("nothing here\n", "t")
                .unwrap_err()
                .to_string()
                .contains("no FTP commands")
        );
    }

    #[test]
    fn needed_tree_from_a_session() {
        let mk = |cmd: &str, code: u16, text: &str| Exchange {
            conn: 0,
            command: Some(cmd.into()),
            replies: vec![(code, vec![format!("{code} {text}")])],
            data: None,
        };
        let mut retr = mk("RETR file.bin", 150, "go");
        retr.replies.push((226, vec!["226 ok".into()]));
        retr.data = Some(DataCapture {
            dir: Direction::Download,
            bytes: Some(b"abc".to_vec()),
            len: Some(3),
        });
        let s = Session {
            name: "t".into(),
            connections: 1,
            exchanges: vec![
                mk("CWD sub", 250, "ok"),
                retr,
                mk("SIZE big.bin", 213, "10"),
                mk("STOR up.bin", 226, "ok"),
                mk("SIZE up.bin", 213, "5"),
                mk("MKD new", 257, "\"/sub/new\""),
                mk("CWD new", 250, "ok"),
                mk("SIZE missing", 550, "no"),
            ],
        };
        let t = needed_tree(&s);
        assert_eq!(
            t.entries,
            vec![
                Entry::Dir("sub".into()),
                Entry::File("sub/file.bin".into(), b"abc".to_vec()),
                Entry::File("sub/big.bin".into(), filler(10))
            ]
        );
    }
}
