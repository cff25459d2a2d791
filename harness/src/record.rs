//! `harness record` / `harness serve --record FILE`: a proxy in front of a
//! target that writes what a person does with any client as a scenario file,
//! so that a bug reproduced by hand becomes a regression test.
//!
//! The proxy relays control connections line by line and data connections
//! byte for byte. It rewrites the addresses in `227`/`229` replies and in
//! `PORT`/`EPRT` commands to its own, so every data connection passes
//! through it and is counted. The file is rewritten after every event, so
//! nothing is lost if the harness is stopped hard.
//!
//! What is written: `connect cN` for each control connection, `use cN` when
//! the client switches, every command (`PORT *`/`EPRT *` for active mode),
//! the exact code of every reply, and for transfers `recv any` (with the
//! size and checksum seen, as a comment) or `send filler N` (the size of
//! what the client uploaded). Passwords are written as typed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::client::{parse_epsv, parse_pasv, port_arg};
use crate::fixture::checksum;
use crate::scenario::{Direction, is_transfer_command};

/// One entry of the recording.
enum Rec {
    Line(usize, String),
    /// A transfer's data, filled when its data connection closes.
    Data(usize, Direction, Option<(u64, String)>),
}

struct Recording {
    out: PathBuf,
    fixture: Option<String>,
    recs: Vec<Rec>,
    conns: usize,
}

impl Recording {
    fn render(&self) -> String {
        let mut s = String::from(
            "# Recorded by `harness record`: edit freely, then move it under scenarios/<set>/.\n",
        );
        s.push_str("client: recorded\n");
        s.push_str("description: a session recorded through the harness proxy\n");
        s.push_str(&format!(
            "fixture: {}\n",
            self.fixture.as_deref().unwrap_or("none")
        ));
        s.push_str("---\n");
        let mut current = usize::MAX;
        for r in &self.recs {
            let conn = match r {
                Rec::Line(c, _) | Rec::Data(c, ..) => *c,
            };
            let text = match r {
                Rec::Line(_, t) => t.clone(),
                Rec::Data(_, Direction::Download, Some((n, sum))) => {
                    format!("recv any                        # {n} bytes, sha256 {sum}")
                }
                Rec::Data(_, Direction::Upload, Some((n, sum))) => format!(
                    "send filler {n}                  # the client sent {n} bytes, sha256 {sum}"
                ),
                Rec::Data(_, Direction::Download, None) => "recv any".into(),
                Rec::Data(_, Direction::Upload, None) => "send nothing".into(),
            };
            if text.starts_with("connect ") {
                current = conn;
            } else if conn != current {
                s.push_str(&format!("use c{}\n", conn + 1));
                current = conn;
            }
            s.push_str(&text);
            s.push('\n');
        }
        s
    }

    fn push(&mut self, r: Rec) -> usize {
        self.recs.push(r);
        self.save();
        self.recs.len() - 1
    }

    fn save(&self) {
        if let Err(e) = std::fs::write(&self.out, self.render()) {
            eprintln!("record: writing {}: {e}", self.out.display());
        }
    }
}

type Shared = Arc<Mutex<Recording>>;

static ACTIVE: OnceLock<Shared> = OnceLock::new();

/// Per control connection: the slot of the transfer whose data is moving.
#[derive(Default)]
struct ConnState {
    last_verb: String,
    slot: Option<usize>,
}

/// Start the recording proxy in front of `upstream`; returns the address
/// clients should use. `fixture` goes into the scenario's header.
pub async fn start_with(
    upstream: SocketAddr,
    out: PathBuf,
    fixture: Option<String>,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let rec: Shared = Arc::new(Mutex::new(Recording {
        out,
        fixture,
        recs: Vec::new(),
        conns: 0,
    }));
    rec.lock().unwrap().save();
    let _ = ACTIVE.set(rec.clone());
    tokio::spawn(async move {
        // Bounded: a recording session is a person at a client.
        for _ in 0..10_000 {
            let Ok((client, _)) = listener.accept().await else {
                break;
            };
            let rec = rec.clone();
            tokio::spawn(async move {
                if let Err(e) = relay(client, upstream, rec).await {
                    eprintln!("record: {e}");
                }
            });
        }
    });
    Ok(addr)
}

/// [`start_with`] without a fixture name.
pub async fn start(upstream: SocketAddr, out: PathBuf) -> Result<SocketAddr> {
    start_with(upstream, out, None).await
}

/// Write the file one last time.
pub async fn finish() {
    if let Some(r) = ACTIVE.get() {
        r.lock().unwrap().save();
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, rec: Shared) -> Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let conn = {
        let mut r = rec.lock().unwrap();
        r.conns += 1;
        let c = r.conns - 1;
        r.push(Rec::Line(c, format!("connect c{}", c + 1)));
        c
    };
    let client_ip = client.peer_addr()?.ip();
    let proxy_ip = server.local_addr()?.ip();
    let state = Arc::new(Mutex::new(ConnState::default()));
    let (cr, mut cw) = client.into_split();
    let (sr, mut sw) = server.into_split();

    // Client to server: commands.
    let up = {
        let (rec, state) = (rec.clone(), state.clone());
        async move {
            let mut lines = BufReader::new(cr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                if lines.read_until(b'\n', &mut buf).await? == 0 {
                    break;
                }
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string();
                let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
                let arg = line.get(verb.len() + 1..).unwrap_or("").trim().to_string();
                let mut wire = buf.clone();
                let mut shown = line.clone();
                if verb == "PORT" || verb == "EPRT" {
                    // The server connects to us; we connect on to the client.
                    let target = if verb == "PORT" {
                        parse_pasv(&arg)
                    } else {
                        let d = arg.chars().next().unwrap_or('|');
                        let p: Vec<&str> = arg.split(d).collect();
                        match (
                            p.get(2).and_then(|a| a.parse::<IpAddr>().ok()),
                            p.get(3).and_then(|x| x.parse::<u16>().ok()),
                        ) {
                            (Some(ip), Some(port)) => Some(SocketAddr::new(ip, port)),
                            _ => None,
                        }
                    };
                    if let Some(t) = target.filter(|t| t.ip() == client_ip) {
                        let l = TcpListener::bind((proxy_ip, 0)).await?;
                        let a = l.local_addr()?;
                        let arg = if verb == "PORT" {
                            port_arg(a).unwrap_or_default()
                        } else {
                            crate::client::eprt_arg(a)
                        };
                        wire = format!("{verb} {arg}\r\n").into_bytes();
                        shown = format!("{verb} *");
                        tokio::spawn(pipe_active(l, t, conn, rec.clone(), state.clone()));
                    }
                }
                state.lock().unwrap().last_verb = verb;
                rec.lock()
                    .unwrap()
                    .push(Rec::Line(conn, format!("> {shown}")));
                sw.write_all(&wire).await?;
            }
            let _ = sw.shutdown().await;
            anyhow::Ok(())
        }
    };
    // Server to client: replies.
    let down = async move {
        let mut lines = BufReader::new(sr);
        let mut buf = Vec::new();
        let mut multi: Option<String> = None;
        loop {
            buf.clear();
            if lines.read_until(b'\n', &mut buf).await? == 0 {
                break;
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\r', '\n'])
                .to_string();
            let mut wire = buf.clone();
            if let Some(end) = &multi {
                if line.starts_with(end.as_str()) {
                    multi = None;
                }
                cw.write_all(&wire).await?;
                continue;
            }
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if line.as_bytes().get(3) == Some(&b'-') {
                multi = Some(format!("{code} "));
            }
            let verb = state.lock().unwrap().last_verb.clone();
            if code == 227 {
                if let Some(a) = parse_pasv(line.get(4..).unwrap_or("")) {
                    let l = TcpListener::bind((proxy_ip, 0)).await?;
                    let mine = l.local_addr()?;
                    let tuple = port_arg(mine).unwrap_or_default();
                    let text = line.get(4..).unwrap_or("");
                    let old = crate::client::port_arg(a).unwrap_or_default();
                    wire = format!("227 {}\r\n", text.replacen(&old, &tuple, 1)).into_bytes();
                    tokio::spawn(pipe_passive(l, a, conn, rec.clone(), state.clone()));
                }
            } else if code == 229 {
                if let Some(port) = parse_epsv(line.get(4..).unwrap_or("")) {
                    let l = TcpListener::bind((proxy_ip, 0)).await?;
                    let mine = l.local_addr()?.port();
                    wire = line
                        .replacen(&format!("|{port}|"), &format!("|{mine}|"), 1)
                        .into_bytes();
                    wire.extend_from_slice(b"\r\n");
                    tokio::spawn(pipe_passive(
                        l,
                        SocketAddr::new(upstream.ip(), port),
                        conn,
                        rec.clone(),
                        state.clone(),
                    ));
                }
            }
            {
                let mut r = rec.lock().unwrap();
                r.push(Rec::Line(conn, format!("< {code}")));
                if (100..200).contains(&code) {
                    if let Some(dir) = is_transfer_command(&verb) {
                        let slot = r.push(Rec::Data(conn, dir, None));
                        state.lock().unwrap().slot = Some(slot);
                    }
                }
            }
            cw.write_all(&wire).await?;
        }
        rec.lock()
            .unwrap()
            .push(Rec::Line(conn, "expect close".into()));
        let _ = cw.shutdown().await;
        anyhow::Ok(())
    };
    let (a, b) = tokio::join!(up, down);
    a.and(b)
}

/// Accept the client on `l`, connect to the server's passive address.
async fn pipe_passive(
    l: TcpListener,
    server: SocketAddr,
    conn: usize,
    rec: Shared,
    state: Arc<Mutex<ConnState>>,
) {
    let Ok(Ok((client, _))) = tokio::time::timeout(Duration::from_secs(120), l.accept()).await
    else {
        return;
    };
    let Ok(server) = TcpStream::connect(server).await else {
        return;
    };
    pipe(client, server, conn, rec, state).await;
}

/// Accept the server on `l`, connect to the client's PORT address.
async fn pipe_active(
    l: TcpListener,
    client: SocketAddr,
    conn: usize,
    rec: Shared,
    state: Arc<Mutex<ConnState>>,
) {
    let Ok(Ok((server, _))) = tokio::time::timeout(Duration::from_secs(120), l.accept()).await
    else {
        return;
    };
    let Ok(client) = TcpStream::connect(client).await else {
        return;
    };
    pipe(client, server, conn, rec, state).await;
}

/// Copy both ways; record what the client sent or received.
async fn pipe(
    client: TcpStream,
    server: TcpStream,
    _conn: usize,
    rec: Shared,
    state: Arc<Mutex<ConnState>>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let copy = async |r: &mut tokio::net::tcp::OwnedReadHalf,
                      w: &mut tokio::net::tcp::OwnedWriteHalf|
           -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if all.len() < crate::client::MAX_DATA {
                        all.extend_from_slice(&buf[..n]);
                    }
                    if w.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = w.shutdown().await;
        all
    };
    let (up, down) = tokio::join!(copy(&mut cr, &mut sw), copy(&mut sr, &mut cw));
    // Give the 1yz reply a moment to be recorded before filling its slot.
    for _ in 0..50 {
        if state.lock().unwrap().slot.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(slot) = state.lock().unwrap().slot.take() else {
        return;
    };
    let mut r = rec.lock().unwrap();
    if let Some(Rec::Data(_, dir, fill)) = r.recs.get_mut(slot) {
        let bytes = if *dir == Direction::Upload {
            &up
        } else {
            &down
        };
        *fill = Some((bytes.len() as u64, checksum(bytes)));
    }
    r.save();
}
