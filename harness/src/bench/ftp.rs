//! The bench's client: the cheapest thing that moves a file over FTP and
//! times it. One control connection per [`Session`] (logged in once, `TYPE I`),
//! passive data connections, bytes counted and dropped (RETR) or sent from
//! one buffer (STOR). A transfer is timed from the `150` reply to the `226`
//! reply, as the issue asks; the raw-TCP ceilings ([`discard`], [`chargen`])
//! use the same reads and writes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::client::{self, Control, Reply};

/// How long one reply or one read of a data connection may take.
pub const STEP: Duration = Duration::from_secs(60);

/// Bytes per read or write on a data connection.
const CHUNK: usize = 256 * 1024;

/// Who logs in.
#[derive(Clone, Debug)]
pub struct Login {
    pub user: String,
    pub pass: String,
}

impl Login {
    /// The project's servers' default account.
    pub fn test() -> Login {
        Login {
            user: "test".into(),
            pass: "test".into(),
        }
    }

    pub fn anonymous() -> Login {
        Login {
            user: "anonymous".into(),
            pass: "bench@".into(),
        }
    }
}

/// One transfer's timing: the `150` reply came at `start`, the `226` at `end`.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub start: Instant,
    pub end: Instant,
    pub bytes: u64,
}

impl Span {
    pub fn secs(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64()
    }
}

/// A logged-in control connection.
pub struct Session {
    c: Control,
    pub addr: SocketAddr,
}

impl Session {
    /// Connect, read the greeting, log in, `TYPE I`.
    pub async fn open(addr: SocketAddr, login: &Login) -> anyhow::Result<Session> {
        let c = Control::connect(addr, Duration::from_secs(10))
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        let mut s = Session { c, addr };
        s.expect(None, 2).await.context("greeting")?;
        let r = s.cmd(&format!("USER {}", login.user), &[2, 3]).await?;
        if r.code / 100 == 3 {
            s.cmd(&format!("PASS {}", login.pass), &[2]).await?;
        }
        s.cmd("TYPE I", &[2]).await?;
        Ok(s)
    }

    async fn expect(&mut self, line: Option<&str>, class: u16) -> anyhow::Result<Reply> {
        let r = self.reply(line).await?;
        if r.code / 100 != class {
            bail!(
                "{}: `{}` (wanted {class}xx)",
                line.unwrap_or("greeting"),
                r.lines.join(" / ")
            );
        }
        Ok(r)
    }

    async fn reply(&mut self, line: Option<&str>) -> anyhow::Result<Reply> {
        if let Some(l) = line {
            self.c.send_line(l).await?;
        }
        self.c
            .read_reply(STEP)
            .await
            .map_err(|e| anyhow!("{}: {e}", line.unwrap_or("reply")))
    }

    /// Send `line`; its reply must be of one of these classes.
    pub async fn cmd(&mut self, line: &str, classes: &[u16]) -> anyhow::Result<Reply> {
        let r = self.reply(Some(line)).await?;
        if !classes.contains(&(r.code / 100)) {
            bail!("`{line}` answered `{}`", r.lines.join(" / "));
        }
        Ok(r)
    }

    /// `PASV` and connect to the address it names.
    async fn pasv(&mut self) -> anyhow::Result<TcpStream> {
        let r = self.cmd("PASV", &[2]).await?;
        let a =
            client::parse_pasv(r.text()).ok_or_else(|| anyhow!("unparsable 227: {}", r.text()))?;
        let s = client::connect(a, Duration::from_secs(10))
            .await
            .with_context(|| format!("data connection to {a}"))?;
        Ok(s)
    }

    /// Send a transfer command and wait for its `150`/`125`: the start.
    async fn begin(&mut self, line: &str) -> anyhow::Result<Instant> {
        let r = self.reply(Some(line)).await?;
        if r.code / 100 != 1 {
            bail!("`{line}` answered `{}`", r.lines.join(" / "));
        }
        Ok(Instant::now())
    }

    /// The `226` that ends a transfer: the end.
    async fn end(&mut self, line: &str) -> anyhow::Result<Instant> {
        let r = self.reply(None).await?;
        if r.code / 100 != 2 {
            bail!("`{line}` ended with `{}`", r.lines.join(" / "));
        }
        Ok(Instant::now())
    }

    /// Prepare a RETR (PASV, data connection) without starting it.
    pub async fn prepare(&mut self) -> anyhow::Result<TcpStream> {
        self.pasv().await
    }

    /// `RETR path` on a prepared data connection; `expect` bytes must come.
    pub async fn retr_on(
        &mut self,
        mut data: TcpStream,
        path: &str,
        expect: u64,
    ) -> anyhow::Result<Span> {
        let line = format!("RETR {path}");
        let start = self.begin(&line).await?;
        let got = drain(&mut data, u64::MAX).await?;
        drop(data);
        let end = self.end(&line).await?;
        if got != expect {
            bail!("RETR {path}: {got} bytes, wanted {expect}");
        }
        Ok(Span {
            start,
            end,
            bytes: got,
        })
    }

    pub async fn retr(&mut self, path: &str, expect: u64) -> anyhow::Result<Span> {
        let d = self.pasv().await?;
        self.retr_on(d, path, expect).await
    }

    /// `STOR path` of `size` bytes (repeating `pattern`) on a prepared data
    /// connection.
    pub async fn stor_on(
        &mut self,
        mut data: TcpStream,
        path: &str,
        size: u64,
        pattern: &[u8],
    ) -> anyhow::Result<Span> {
        let line = format!("STOR {path}");
        let start = self.begin(&line).await?;
        pour(&mut data, size, pattern).await?;
        data.shutdown().await.ok();
        // The server closes its side once it has everything; then `226`.
        let _ = timeout(STEP, drain(&mut data, 1 << 20)).await;
        drop(data);
        let end = self.end(&line).await?;
        Ok(Span {
            start,
            end,
            bytes: size,
        })
    }

    pub async fn stor(&mut self, path: &str, size: u64, pattern: &[u8]) -> anyhow::Result<Span> {
        let d = self.pasv().await?;
        self.stor_on(d, path, size, pattern).await
    }

    /// `LIST path` or `MLSD path`: time from the command to the `226`, and
    /// the lines that came.
    pub async fn listing(&mut self, verb: &str, path: &str) -> anyhow::Result<(Duration, usize)> {
        let mut data = self.pasv().await?;
        let line = format!("{verb} {path}");
        let t0 = Instant::now();
        self.begin(&line).await?;
        let mut text = Vec::new();
        timeout(STEP, data.read_to_end(&mut text))
            .await
            .map_err(|_| anyhow!("{line}: data connection silent for {STEP:?}"))??;
        drop(data);
        let end = self.end(&line).await?;
        let lines = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        Ok((end.duration_since(t0), lines))
    }

    pub async fn quit(mut self) {
        let _ = self.c.send_line("QUIT").await;
        let _ = self.c.read_reply(Duration::from_secs(2)).await;
    }
}

/// Read a stream to its end (or `limit` bytes); the count.
async fn drain(s: &mut TcpStream, limit: u64) -> anyhow::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    while n < limit {
        let k = timeout(STEP, s.read(&mut buf))
            .await
            .map_err(|_| anyhow!("data connection silent for {STEP:?}"))??;
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    Ok(n)
}

/// Write `size` bytes, repeating `pattern`.
async fn pour(s: &mut TcpStream, size: u64, pattern: &[u8]) -> anyhow::Result<()> {
    let mut left = size;
    while left > 0 {
        let k = (left as usize).min(pattern.len()).min(CHUNK);
        timeout(STEP, s.write_all(&pattern[..k]))
            .await
            .map_err(|_| anyhow!("data connection stalled for {STEP:?} while sending"))??;
        left -= k as u64;
    }
    Ok(())
}

/// Connect to a diag service, which serves one connection at a time and
/// listens again only after the last one ended: a refusal right after the
/// previous run is retried for up to 3 s.
pub async fn connect_service(addr: SocketAddr, what: &str) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match client::connect(addr, Duration::from_secs(10)).await {
            Ok(s) => return Ok(s),
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(anyhow!("{what} service at {addr}: {e}")),
        }
    }
}

/// The STOR ceiling: `size` bytes into a discard service, from connect to
/// the server's close after ours (the `226` of raw TCP).
pub async fn discard(addr: SocketAddr, size: u64, pattern: &[u8]) -> anyhow::Result<Span> {
    let mut s = connect_service(addr, "discard").await?;
    let start = Instant::now();
    pour(&mut s, size, pattern).await?;
    s.shutdown().await.ok();
    timeout(STEP, drain(&mut s, 1 << 20))
        .await
        .map_err(|_| anyhow!("discard at {addr} did not close after us"))??;
    Ok(Span {
        start,
        end: Instant::now(),
        bytes: size,
    })
}

/// The RETR ceiling: `size` bytes out of a chargen service, from connect to
/// the last byte.
pub async fn chargen(addr: SocketAddr, size: u64) -> anyhow::Result<Span> {
    let mut s = connect_service(addr, "chargen").await?;
    let start = Instant::now();
    let got = drain(&mut s, size).await?;
    let end = Instant::now();
    if got < size {
        bail!("chargen at {addr} closed after {got} of {size} bytes");
    }
    Ok(Span {
        start,
        end,
        bytes: got,
    })
}

/// `n` sessions move `size` bytes each at once (RETR of `path`, or STOR to
/// `path.N`); every session is logged in and its data connection open
/// before the first transfer command goes. The aggregate: all bytes over
/// the time from the first `150` to the last `226`.
pub async fn concurrent(
    addr: SocketAddr,
    login: &Login,
    n: usize,
    stor: bool,
    path: &str,
    size: u64,
    pattern: &[u8],
) -> anyhow::Result<Span> {
    let mut ready = Vec::new();
    for _ in 0..n {
        let mut s = Session::open(addr, login).await?;
        let d = s.prepare().await?;
        ready.push((s, d));
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, (mut s, d)) in ready.into_iter().enumerate() {
        let path = if stor {
            format!("{path}.{i}")
        } else {
            path.to_string()
        };
        let pattern = pattern.to_vec();
        set.spawn(async move {
            let r = if stor {
                s.stor_on(d, &path, size, &pattern).await
            } else {
                s.retr_on(d, &path, size).await
            };
            s.quit().await;
            r
        });
    }
    let mut spans = Vec::new();
    while let Some(r) = set.join_next().await {
        spans.push(r.map_err(|e| anyhow!("transfer task: {e}"))??);
    }
    let start = spans.iter().map(|s| s.start).min().unwrap();
    let end = spans.iter().map(|s| s.end).max().unwrap();
    Ok(Span {
        start,
        end,
        bytes: size * n as u64,
    })
}
