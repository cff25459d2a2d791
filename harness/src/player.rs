//! Plays a [`Scenario`] against a running server and writes its
//! [`Transcript`].
//!
//! The player does what the scenario says and nothing more. It reads a reply
//! for every `<` line; after a `>` line with no `<` line of its own it reads
//! one reply anyway (and, for a transfer, the data and the final reply), so
//! that a scenario can be short where the exact code does not matter. A `raw`
//! line reads nothing by itself: the scenario says how many replies follow.
//!
//! A check that fails is written into the transcript (`!!`) and the session
//! goes on: the rest of the dialogue is still worth seeing. A connection
//! that is closed or stops answering skips its remaining steps.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::client::{self, Control, Data, ReadError, Reply};
use crate::fixture::{Tree, checksum, filler};
use crate::scenario::{Direction, Payload, ReplySpec, Scenario, Step, is_transfer_command};
use crate::transcript::{Entry, Transcript, escape_bytes, visible};

/// Called for every transcript entry as it happens (`-v`).
pub type Observer<'a> = &'a mut dyn FnMut(&Transcript, &Entry);

/// The outcome of one play.
pub struct Played {
    pub transcript: Transcript,
    pub elapsed: Duration,
}

impl Played {
    pub fn failures(&self) -> Vec<String> {
        self.transcript.failures().map(str::to_string).collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum XferState {
    /// Transfer command sent, no reply yet.
    Sent,
    /// 1yz received: the data connection is live.
    Open,
    /// Data moved; waiting for the final reply.
    Moved,
}

struct Transfer {
    dir: Direction,
    state: XferState,
}

struct Conn {
    name: String,
    ctl: Option<Control>,
    data: Option<Data>,
    /// Verb of the last command sent (to know what a reply answers).
    last_verb: String,
    last_arg: String,
    xfer: Option<Transfer>,
    /// Steps skipped because the connection was gone.
    skipped: usize,
}

struct Player<'a> {
    addr: SocketAddr,
    tree: &'a Tree,
    timeout: Duration,
    login: Option<(String, String)>,
    conns: Vec<Conn>,
    cur: usize,
    t: Transcript,
    observer: Option<Observer<'a>>,
}

/// Play `scenario` against the server at `addr`, whose root holds `tree`.
pub async fn play<'a>(
    scenario: &Scenario,
    addr: SocketAddr,
    tree: &'a Tree,
    observer: Option<Observer<'a>>,
) -> Played {
    let start = Instant::now();
    let mut p = Player {
        addr,
        tree,
        timeout: scenario.header.timeout,
        login: scenario.header.login.clone(),
        conns: Vec::new(),
        cur: 0,
        t: Transcript::new(scenario.connection_count() > 1),
        observer,
    };
    let steps = &scenario.steps;
    for (i, step) in steps.iter().enumerate() {
        let next = steps.get(i + 1);
        p.step(step, next).await;
    }
    p.finish().await;
    Played {
        transcript: p.t,
        elapsed: start.elapsed(),
    }
}

/// Does the next step read this connection's replies itself?
fn reads_reply(next: Option<&Step>) -> bool {
    matches!(
        next,
        Some(
            Step::Expect(_)
                | Step::Wait(..)
                | Step::Recv(_)
                | Step::SendData(_)
                | Step::ExpectClose
        )
    )
}

impl<'a> Player<'a> {
    fn conn_name(&self) -> String {
        self.conns
            .get(self.cur)
            .map_or_else(|| "?".to_string(), |c| c.name.clone())
    }

    fn record(&mut self, mark: &'static str, text: impl Into<String>) {
        let conn = self.conn_name();
        self.push(Entry::Line {
            conn,
            mark,
            text: text.into(),
        });
    }

    fn fail(&mut self, text: impl Into<String>) {
        let conn = self.conn_name();
        self.push(Entry::Failure {
            conn,
            text: text.into(),
        });
    }

    fn push(&mut self, e: Entry) {
        if let Some(o) = self.observer.as_mut() {
            o(&self.t, &e);
        }
        self.t.entries.push(e);
    }

    fn conn(&mut self) -> &mut Conn {
        &mut self.conns[self.cur]
    }

    /// The current connection's control channel, or a recorded reason why
    /// there is none.
    fn live(&mut self) -> bool {
        if self.conns.get(self.cur).is_some_and(|c| c.ctl.is_some()) {
            return true;
        }
        if let Some(c) = self.conns.get_mut(self.cur) {
            c.skipped += 1;
        }
        false
    }

    async fn step(&mut self, step: &Step, next: Option<&Step>) {
        match step {
            Step::Connect(name) => {
                let conn = Conn {
                    name: name.clone(),
                    ctl: None,
                    data: None,
                    last_verb: String::new(),
                    last_arg: String::new(),
                    xfer: None,
                    skipped: 0,
                };
                if let Some(i) = self.conns.iter().position(|c| &c.name == name) {
                    self.cur = i;
                    self.note_skipped();
                    self.conns[i] = conn;
                    self.cur = i;
                } else {
                    self.conns.push(conn);
                    self.cur = self.conns.len() - 1;
                }
                self.record("--", "connect");
                match Control::connect(self.addr, self.timeout).await {
                    Ok(c) => self.conn().ctl = Some(c),
                    Err(e) => {
                        self.fail(format!("cannot connect: {e}"));
                        return;
                    }
                }
                if !reads_reply(next) {
                    self.expect(None).await;
                }
            }
            Step::Use(name) => {
                self.cur = self
                    .conns
                    .iter()
                    .position(|c| &c.name == name)
                    .expect("checked by the parser");
            }
            Step::Send(line) => {
                if !self.live() {
                    return;
                }
                self.send(line).await;
                if !reads_reply(next) {
                    self.expect(None).await;
                    if self
                        .conn()
                        .xfer
                        .as_ref()
                        .is_some_and(|x| x.state != XferState::Sent)
                    {
                        self.expect(None).await;
                    }
                }
            }
            Step::Raw(bytes) => {
                if !self.live() {
                    return;
                }
                self.record("C>", escape_bytes(bytes));
                let r = self.conn().ctl.as_mut().unwrap().send_raw(bytes).await;
                if let Err(e) = r {
                    self.fail(format!("send failed: {e}"));
                }
                // A raw line may hold a command; remember its verb.
                let verb = String::from_utf8_lossy(bytes)
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                self.conn().last_verb = verb;
            }
            Step::Expect(spec) => self.expect(Some(spec)).await,
            Step::Wait(spec, within) => self.wait(spec, *within).await,
            Step::Recv(p) => self.data_step(Some(p), true).await,
            Step::SendData(p) => self.data_step(Some(p), false).await,
            Step::Login => {
                let (u, pw) = self.login.clone().expect("checked by the parser");
                for (line, code) in [(format!("USER {u}"), 331), (format!("PASS {pw}"), 230)] {
                    if !self.live() {
                        return;
                    }
                    self.send(&line).await;
                    let spec = ReplySpec {
                        codes: vec![crate::scenario::CodePattern::Exact(code)],
                        text: None,
                    };
                    self.expect(Some(&spec)).await;
                }
            }
            Step::Sleep(d) => {
                self.record("--", format!("sleep {}", fmt_duration(*d)));
                tokio::time::sleep(*d).await;
            }
            Step::Close => {
                self.record("--", "client closes the connection");
                let c = self.conn();
                c.ctl = None;
                c.data = None;
                c.xfer = None;
            }
            Step::ExpectClose => {
                if !self.live() {
                    return;
                }
                let limit = self.timeout;
                let r = self.conn().ctl.as_mut().unwrap().read_reply(limit).await;
                match r {
                    Err(ReadError::Closed(partial)) => {
                        if !partial.is_empty() {
                            self.fail(format!("partial line before close: {}", visible(&partial)));
                        }
                        self.record("--", "connection closed by server");
                        self.conn().ctl = None;
                    }
                    Ok(reply) => {
                        self.record_reply(&reply);
                        self.fail("expected the server to close the connection");
                    }
                    Err(ReadError::Timeout) => self.fail(format!(
                        "server did not close the connection within {}",
                        fmt_duration(limit)
                    )),
                    Err(ReadError::Io(e)) => {
                        // A reset is also the server closing.
                        self.record("--", format!("connection closed by server ({})", e.kind()));
                        self.conn().ctl = None;
                    }
                }
            }
        }
    }

    /// One line for all the steps a dead connection skipped.
    fn note_skipped(&mut self) {
        let n = std::mem::take(&mut self.conns[self.cur].skipped);
        if n > 0 {
            self.fail(format!(
                "{n} step{} skipped: the connection was closed",
                if n == 1 { "" } else { "s" }
            ));
        }
    }

    async fn send(&mut self, line: &str) {
        let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let mut wire = line.to_string();
        let arg = line.get(verb.len() + 1..).unwrap_or("").trim();
        if (verb == "PORT" || verb == "EPRT") && arg == "*" {
            let ctl = self.conns[self.cur].ctl.as_ref().unwrap();
            let (local, ip) = (ctl.local, ctl.local.ip());
            match client::listen(ip).await {
                Ok(l) => {
                    let a = l.local_addr().unwrap();
                    let arg = if verb == "PORT" {
                        client::port_arg(a)
                    } else {
                        Some(client::eprt_arg(a))
                    };
                    match arg {
                        Some(arg) => {
                            wire = format!("{verb} {arg}");
                            self.conn().data = Some(Data::Active(l));
                        }
                        None => self.fail(format!("PORT cannot carry the IPv6 address {local}")),
                    }
                }
                Err(e) => self.fail(format!("cannot listen for the data connection: {e}")),
            }
        }
        if let Some(dir) = is_transfer_command(&verb) {
            self.conn().xfer = Some(Transfer {
                dir,
                state: XferState::Sent,
            });
        } else if verb != "PORT"
            && verb != "EPRT"
            && verb != "PASV"
            && verb != "EPSV"
            && verb != "REST"
            && verb != "TYPE"
        {
            // A new command that is neither a transfer nor its setup ends any
            // transfer bookkeeping left from before.
            self.conn().xfer = None;
        }
        // Only what the harness filled in is redacted; what the scenario
        // wrote (PORT 127,0,0,2,4,1) stays readable in the snapshot.
        self.record(if wire != line { "C*" } else { "C:" }, wire.clone());
        self.conn().last_arg = arg.to_string();
        self.conn().last_verb = verb;
        let r = self.conn().ctl.as_mut().unwrap().send_line(&wire).await;
        if let Err(e) = r {
            self.fail(format!("send failed: {e}"));
        }
    }

    fn record_reply(&mut self, reply: &Reply) {
        let c = &self.conns[self.cur];
        if c.last_verb == "STAT" && !c.last_arg.is_empty() && reply.lines.len() > 2 {
            // STAT with a path lists a directory over the control connection,
            // in whatever order the file system keeps it: sort the entries,
            // as listings on the data connection are sorted.
            let n = reply.lines.len();
            let mut mid: Vec<String> = reply.lines[1..n - 1].iter().map(|l| visible(l)).collect();
            mid.sort_by_key(|l| crate::redact::redact(l));
            self.record("S:", visible(&reply.lines[0]));
            for l in mid {
                self.record("S:", l);
            }
            self.record("S:", visible(&reply.lines[n - 1]));
        } else {
            for l in &reply.lines {
                self.record("S:", visible(l));
            }
        }
        if reply.code == 0 {
            self.fail("reply does not start with a three-digit code");
        }
        if reply.bare_lf {
            self.fail("reply line ended with LF, not CRLF");
        }
        if reply.lines.iter().any(|l| l.len() <= 3) {
            self.fail("reply line without text (FileZilla drops lines of 3 characters or fewer)");
        }
    }

    /// Read one reply (after moving any pending data) and check it.
    async fn expect(&mut self, spec: Option<&ReplySpec>) {
        if !self.live() {
            return;
        }
        if self
            .conn()
            .xfer
            .as_ref()
            .is_some_and(|x| x.state == XferState::Open)
        {
            self.data_step(None, false).await;
        }
        self.read_checked(spec).await;
    }

    /// Read one reply and check it (no data moved).
    async fn read_checked(&mut self, spec: Option<&ReplySpec>) {
        if !self.live() {
            return;
        }
        let limit = self.timeout;
        let r = self.conn().ctl.as_mut().unwrap().read_reply(limit).await;
        let reply = match r {
            Ok(r) => r,
            Err(e) => {
                let want = spec.map_or("a reply".to_string(), |s| s.to_string());
                match e {
                    ReadError::Timeout => self.fail(format!(
                        "expected {want}, no reply within {}",
                        fmt_duration(limit)
                    )),
                    e => {
                        self.fail(format!("expected {want}: {e}"));
                        self.record("--", "connection closed by server");
                        self.conn().ctl = None;
                    }
                }
                return;
            }
        };
        self.record_reply(&reply);
        if let Some(spec) = spec {
            if !spec.matches(reply.code, reply.text()) {
                self.fail(format!("expected {spec}, got {}", visible(&reply.lines[0])));
            }
        }
        self.after_reply(&reply).await;
    }

    async fn wait(&mut self, spec: &ReplySpec, within: Duration) {
        if !self.live() {
            return;
        }
        let deadline = Instant::now() + within;
        for _ in 0..1000 {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.conn().ctl.as_mut().unwrap().read_reply(left).await;
            match r {
                Ok(reply) => {
                    self.record_reply(&reply);
                    let hit = spec.matches(reply.code, reply.text());
                    self.after_reply(&reply).await;
                    if hit {
                        return;
                    }
                }
                Err(ReadError::Timeout) => {
                    self.fail(format!(
                        "waited {} for {spec}; it did not come",
                        fmt_duration(within)
                    ));
                    return;
                }
                Err(e) => {
                    self.fail(format!("waiting for {spec}: {e}"));
                    self.record("--", "connection closed by server");
                    self.conn().ctl = None;
                    return;
                }
            }
        }
        self.fail(format!("gave up waiting for {spec} after 1000 replies"));
    }

    /// What a reply means for data connections.
    async fn after_reply(&mut self, reply: &Reply) {
        let verb = self.conn().last_verb.clone();
        if let Some(x) = self.conn().xfer.as_mut() {
            if reply.is_preliminary() {
                if x.state == XferState::Sent {
                    x.state = XferState::Open;
                }
            } else {
                // The final reply of the transfer, or its refusal: either way
                // the data connection is spent.
                self.conn().xfer = None;
                self.conn().data = None;
            }
            return;
        }
        let peer = self.conn().ctl.as_ref().map(|c| c.peer);
        let target = match (verb.as_str(), reply.code, peer) {
            ("PASV", 227, Some(_)) => match client::parse_pasv(reply.text()) {
                Some(a) => Some(a),
                None => {
                    self.fail("227 reply without h1,h2,h3,h4,p1,p2");
                    None
                }
            },
            ("EPSV", 229, Some(peer)) => match client::parse_epsv(reply.text()) {
                Some(port) => Some(SocketAddr::new(peer.ip(), port)),
                None => {
                    self.fail("229 reply without (|||port|)");
                    None
                }
            },
            _ => return,
        };
        self.conn().data = None;
        if let Some(a) = target {
            match client::connect(a, self.timeout).await {
                Ok(s) => self.conn().data = Some(Data::Passive(s)),
                Err(e) => self.fail(format!("data connection to {a} failed: {e}")),
            }
        }
    }

    /// Move the data of the transfer in progress. `payload` is `None` for the
    /// default: receive anything, or send nothing.
    async fn data_step(&mut self, payload: Option<&Payload>, recv_step: bool) {
        if !self.live() {
            return;
        }
        let state = self.conn().xfer.as_ref().map(|x| (x.dir, x.state));
        let dir = match state {
            Some((dir, XferState::Open)) => dir,
            Some((_, XferState::Sent)) => {
                // The reply to the transfer command has not been read yet:
                // for active mode the server connects after it, so read it.
                self.read_checked(None).await;
                match self.conn().xfer.as_ref().map(|x| (x.dir, x.state)) {
                    Some((dir, XferState::Open)) => dir,
                    _ => {
                        self.fail("no transfer in progress (the server did not answer 1yz)");
                        return;
                    }
                }
            }
            _ => {
                if payload.is_some() {
                    self.fail("no transfer in progress for this data step");
                }
                return;
            }
        };
        if payload.is_some() && (dir == Direction::Download) != recv_step {
            self.fail(format!(
                "`{}` does not fit a {dir:?}",
                if recv_step { "recv" } else { "send" }
            ));
        }
        self.conn().xfer.as_mut().unwrap().state = XferState::Moved;
        let Some(data) = self.conn().data.take() else {
            self.fail("the server opened a transfer but there is no data connection (no PASV/EPSV/PORT/EPRT before it)");
            return;
        };
        let peer_ip = self.conn().ctl.as_ref().unwrap().peer.ip();
        let mut stream = match data.into_stream(self.timeout, peer_ip).await {
            Ok(s) => s,
            Err(e) => {
                self.fail(format!("data connection: {e}"));
                return;
            }
        };
        match dir {
            Direction::Download => match client::read_all(&mut stream, self.timeout).await {
                Ok(bytes) => self.check_received(&bytes, payload.unwrap_or(&Payload::Any)),
                Err(e) => self.fail(format!("receiving data: {e}")),
            },
            Direction::Upload => {
                let p = payload.unwrap_or(&Payload::Nothing);
                let bytes = match self.payload_bytes(p) {
                    Some(b) => b,
                    None => return,
                };
                match client::write_all_and_close(&mut stream, &bytes, self.timeout).await {
                    Ok(()) => self.record(
                        "D:",
                        format!(
                            "sent {} bytes, sha256 {}{}",
                            bytes.len(),
                            checksum(&bytes),
                            describe(p)
                        ),
                    ),
                    Err(e) => self.fail(format!("sending data: {e}")),
                }
            }
        }
    }

    fn payload_bytes(&mut self, p: &Payload) -> Option<Vec<u8>> {
        match p {
            Payload::Fixture(path) => match self.tree.file(path) {
                Some(b) => Some(b.to_vec()),
                None => {
                    self.fail(format!("fixture `{}` has no file `{path}`", self.tree.name));
                    None
                }
            },
            Payload::Filler(n) => Some(filler(*n)),
            Payload::Bytes(b) => Some(b.clone()),
            Payload::Nothing | Payload::Any | Payload::Listing => Some(Vec::new()),
        }
    }

    fn check_received(&mut self, bytes: &[u8], p: &Payload) {
        if *p == Payload::Listing {
            let text = String::from_utf8_lossy(bytes);
            let crlf = text.matches("\r\n").count();
            let lf = text.matches('\n').count();
            let ends = match (crlf, lf) {
                (0, 0) => "empty",
                (c, l) if c == l => "CRLF",
                (0, _) => "LF",
                _ => "mixed CRLF/LF",
            };
            let lines: Vec<String> = text
                .split('\n')
                .map(|l| visible(l.trim_end_matches('\r')))
                .filter(|l| !l.is_empty())
                .collect();
            let n = lines.len();
            let conn = self.conn_name();
            self.push(Entry::Listing { conn, lines });
            self.record(
                "D:",
                format!("listing, {n} line{}, {ends}", if n == 1 { "" } else { "s" }),
            );
            if !text.is_empty() && !text.ends_with('\n') {
                self.fail("listing does not end with a line end");
            }
            return;
        }
        self.record(
            "D:",
            format!(
                "received {} bytes, sha256 {}{}",
                bytes.len(),
                checksum(bytes),
                describe(p)
            ),
        );
        if *p == Payload::Any {
            return;
        }
        let Some(want) = self.payload_bytes(p) else {
            return;
        };
        if want != bytes {
            self.fail(format!(
                "data differs from {}: wanted {} bytes, sha256 {}",
                describe(p).trim_start_matches(" = "),
                want.len(),
                checksum(&want)
            ));
        }
    }

    /// Look for replies nobody asked for, then close everything.
    async fn finish(&mut self) {
        for i in 0..self.conns.len() {
            self.cur = i;
            self.note_skipped();
            let Some(ctl) = self.conns[i].ctl.as_mut() else {
                continue;
            };
            match ctl.poll_extra(Duration::from_millis(100)).await {
                None | Some(Err(ReadError::Closed(_))) | Some(Err(ReadError::Io(_))) => {}
                Some(Ok(reply)) => {
                    self.record_reply(&reply);
                    self.fail("reply that no step asked for");
                }
                Some(Err(ReadError::Timeout)) => self.fail("incomplete reply left at the end"),
            }
            self.conns[i].ctl = None;
        }
    }
}

fn describe(p: &Payload) -> String {
    match p {
        Payload::Fixture(f) => format!(" = fixture {f}"),
        Payload::Filler(n) => format!(" = filler {n}"),
        Payload::Bytes(b) => format!(" = text {}", escape_bytes(b)),
        Payload::Nothing => " = nothing".into(),
        Payload::Any | Payload::Listing => String::new(),
    }
}

pub fn fmt_duration(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A fake server: for each command line received, the canned answer for
    /// its verb (or `500 ?`); `greeting` first.
    async fn fake(
        greeting: &'static str,
        answers: &'static [(&'static str, &'static str)],
    ) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let (r, mut w) = s.into_split();
            w.write_all(greeting.as_bytes()).await.unwrap();
            let mut lines = BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let verb = line.split(' ').next().unwrap_or("").to_string();
                let ans = answers
                    .iter()
                    .find(|(v, _)| *v == verb)
                    .map_or("500 ?\r\n", |(_, a)| a);
                if w.write_all(ans.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        a
    }

    async fn run(text: &str, addr: SocketAddr) -> Played {
        let s = Scenario::parse("t/t", text).unwrap();
        play(&s, addr, &Tree::default(), None).await
    }

    #[tokio::test]
    async fn wrong_code_bare_lf_short_line_and_extra_reply_are_failures() {
        let addr = fake(
            "220 hi\r\n",
            &[
                ("NOOP", "200\r\n"),
                ("PWD", "257 \"/\" ok\n"),
                ("SYST", "215 UNIX\r\n215 again\r\n"),
            ],
        )
        .await;
        let p = run(
            "description: d\n---\nconnect\n< 220\n> NOOP\n< 200\n> PWD\n< 250\n> SYST\n< 215\n",
            addr,
        )
        .await;
        let f = p.failures().join("\n");
        assert!(f.contains("without text"), "{f}");
        assert!(f.contains("ended with LF"), "{f}");
        assert!(f.contains("expected 250, got 257"), "{f}");
        assert!(f.contains("no step asked for"), "{f}");
        assert_eq!(p.failures().len(), 4, "{f}");
    }

    #[tokio::test]
    async fn a_clean_session_has_no_failure_and_a_stable_transcript() {
        let addr = fake(
            "220 hi\r\n",
            &[("NOOP", "200 ok\r\n"), ("QUIT", "221 bye\r\n")],
        )
        .await;
        let p = run(
            "description: d\n---\nconnect\n> NOOP\n< 2xx\n> QUIT\n< 221\n",
            addr,
        )
        .await;
        assert!(p.failures().is_empty(), "{:?}", p.failures());
        assert_eq!(
            p.transcript.render(true),
            "-- connect\nS: 220 hi\nC: NOOP\nS: 200 ok\nC: QUIT\nS: 221 bye\n"
        );
    }

    #[tokio::test]
    async fn transfer_without_data_connection_and_silence_are_reported() {
        let addr = fake("220 hi\r\n", &[("RETR", "150 here it comes\r\n")]).await;
        let p = run("description: d\ntimeout: 300ms\n---\nconnect\n< 220\n> RETR x\n< 150\nrecv any\n< 226\n", addr).await;
        let f = p.failures().join("\n");
        assert!(f.contains("no data connection"), "{f}");
        assert!(f.contains("expected 226, no reply within 300ms"), "{f}");
    }

    #[tokio::test]
    async fn wrong_greeting_and_a_server_that_does_not_close() {
        let addr = fake("421 go away\r\n", &[]).await;
        let p = run(
            "description: d\ntimeout: 1s\n---\nconnect\n< 220\nexpect close\n> NOOP\n> NOOP\n",
            addr,
        )
        .await;
        let f = p.failures();
        assert_eq!(f[0], "expected 220, got 421 go away", "{f:?}");
        // The fake keeps the socket open, so `expect close` times out; the two
        // NOOPs are answered 500 and are not failures of their own.
        assert!(f.iter().any(|x| x.contains("did not close")), "{f:?}");
    }
}
