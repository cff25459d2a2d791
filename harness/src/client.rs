//! A deliberately literal FTP client: it sends exactly what it is told, reads
//! replies with RFC 959's multi-line framing, and opens data connections the
//! way real clients do (PASV/EPSV: connect as soon as the reply arrives;
//! PORT/EPRT: listen first, accept after the transfer command).
//!
//! It keeps everything a transcript needs: every reply line as sent, and
//! whether the server ended a line with a bare LF.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;

/// Longest reply line accepted before the reply is called malformed.
pub const MAX_REPLY_LINE: usize = 8192;
/// Most lines in one multi-line reply (bounded, like every loop here).
pub const MAX_REPLY_LINES: usize = 10_000;
/// Most bytes received on one data connection.
pub const MAX_DATA: usize = 512 << 20;

/// One reply, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The code of the first line; 0 if the first line does not start with
    /// three digits.
    pub code: u16,
    /// Every line, without its line end, lossily decoded (control bytes kept).
    pub lines: Vec<String>,
    /// Some line ended with LF alone (RFC 959 wants CRLF).
    pub bare_lf: bool,
}

impl Reply {
    /// The first line's text after the code and its separator.
    pub fn text(&self) -> &str {
        self.lines.first().map_or("", |l| l.get(4..).unwrap_or(""))
    }

    /// Preliminary (1yz) reply.
    pub fn is_preliminary(&self) -> bool {
        (100..200).contains(&self.code)
    }
}

/// Why no reply could be read.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing (or no complete reply) within the time allowed.
    Timeout,
    /// The server closed the connection; any partial line is attached.
    Closed(String),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Timeout => f.write_str("no reply in time"),
            ReadError::Closed(p) if p.is_empty() => f.write_str("connection closed by the server"),
            ReadError::Closed(p) => write!(
                f,
                "connection closed by the server after a partial line {p:?}"
            ),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A control connection.
pub struct Control {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Connect with a deadline.
pub async fn connect(addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
    match timeout(limit, TcpStream::connect(addr)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect to {addr} timed out"),
        )),
    }
}

impl Control {
    pub async fn connect(addr: SocketAddr, limit: Duration) -> io::Result<Self> {
        let s = connect(addr, limit).await?;
        s.set_nodelay(true)?;
        let (local, peer) = (s.local_addr()?, s.peer_addr()?);
        let (r, w) = s.into_split();
        Ok(Control {
            reader: BufReader::new(r),
            writer: w,
            local,
            peer,
        })
    }

    /// Send `line` followed by CRLF.
    pub async fn send_line(&mut self, line: &str) -> io::Result<()> {
        let mut b = Vec::with_capacity(line.len() + 2);
        b.extend_from_slice(line.as_bytes());
        b.extend_from_slice(b"\r\n");
        self.send_raw(&b).await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.writer.write_all(bytes).await?;
        self.writer.flush().await
    }

    /// Close our side (FIN); the read side stays open to see the server's end.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.writer.shutdown().await
    }

    /// Read one line (up to LF). `Ok(None)` on a clean EOF before any byte.
    async fn read_line(&mut self) -> Result<(Vec<u8>, bool), ReadError> {
        let mut line = Vec::new();
        loop {
            let buf = self.reader.fill_buf().await.map_err(ReadError::Io)?;
            if buf.is_empty() {
                return Err(ReadError::Closed(
                    String::from_utf8_lossy(&line).into_owned(),
                ));
            }
            if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&buf[..i]);
                self.reader.consume(i + 1);
                let crlf = line.last() == Some(&b'\r');
                if crlf {
                    line.pop();
                }
                return Ok((line, !crlf));
            }
            let n = buf.len();
            line.extend_from_slice(buf);
            self.reader.consume(n);
            if line.len() > MAX_REPLY_LINE {
                // Hand back what came; the caller records it as malformed.
                return Ok((line, true));
            }
        }
    }

    /// Read one complete reply within `limit`.
    pub async fn read_reply(&mut self, limit: Duration) -> Result<Reply, ReadError> {
        match timeout(limit, self.read_reply_inner()).await {
            Ok(r) => r,
            Err(_) => Err(ReadError::Timeout),
        }
    }

    async fn read_reply_inner(&mut self) -> Result<Reply, ReadError> {
        let (first, mut bare_lf) = self.read_line().await?;
        let first = String::from_utf8_lossy(&first).into_owned();
        let b = first.as_bytes();
        let code = if b.len() >= 3
            && b[..3].iter().all(u8::is_ascii_digit)
            && (b.len() == 3 || b[3] == b' ' || b[3] == b'-')
        {
            first[..3].parse().unwrap()
        } else {
            0
        };
        let mut lines = vec![first.clone()];
        if code != 0 && b.get(3) == Some(&b'-') {
            let end = format!("{code} ");
            while lines.len() < MAX_REPLY_LINES {
                let (l, lf) = self.read_line().await?;
                bare_lf |= lf;
                let l = String::from_utf8_lossy(&l).into_owned();
                let done = l.starts_with(&end) || l == end.trim_end();
                lines.push(l);
                if done {
                    break;
                }
            }
        }
        Ok(Reply {
            code,
            lines,
            bare_lf,
        })
    }

    /// Is a reply (or anything) already waiting, or does the server close
    /// within `limit`? Used at the end of a scenario to catch unasked-for
    /// replies.
    pub async fn poll_extra(&mut self, limit: Duration) -> Option<Result<Reply, ReadError>> {
        match timeout(limit, self.reader.fill_buf()).await {
            Err(_) => None,
            Ok(Ok([])) => Some(Err(ReadError::Closed(String::new()))),
            Ok(Ok(_)) => Some(self.read_reply(limit.max(Duration::from_millis(500))).await),
            Ok(Err(e)) => Some(Err(ReadError::Io(e))),
        }
    }
}

/// A data connection being set up or ready.
pub enum Data {
    /// Connected to the server's passive port.
    Passive(TcpStream),
    /// Listening for the server (PORT/EPRT).
    Active(TcpListener),
}

impl Data {
    /// The stream of the transfer: the passive one, or the accepted active one
    /// (accepted only from `peer_ip`, the control connection's peer).
    pub async fn into_stream(self, limit: Duration, peer_ip: IpAddr) -> io::Result<TcpStream> {
        match self {
            Data::Passive(s) => Ok(s),
            Data::Active(l) => {
                let (s, from) = timeout(limit, l.accept()).await.map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the server did not connect to our PORT/EPRT address",
                    )
                })??;
                if from.ip() != peer_ip {
                    return Err(io::Error::other(format!(
                        "data connection from {from}, not the server"
                    )));
                }
                Ok(s)
            }
        }
    }
}

/// Parse the address of a `227` reply: six numbers, in parentheses or not.
pub fn parse_pasv(text: &str) -> Option<SocketAddr> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u16> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    if nums.len() != 6 || nums.iter().any(|&n| n > 255) {
        return None;
    }
    let ip = Ipv4Addr::new(nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8);
    Some(SocketAddr::new(ip.into(), nums[4] * 256 + nums[5]))
}

/// Parse the port of a `229` reply: `(|||port|)` with any delimiter.
pub fn parse_epsv(text: &str) -> Option<u16> {
    let open = text.find('(')?;
    let close = text[open..].find(')')? + open;
    let inner = &text[open + 1..close];
    let d = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(d).collect();
    if parts.len() != 5 || !parts[1].is_empty() || !parts[2].is_empty() || !parts[4].is_empty() {
        return None;
    }
    parts[3].parse().ok().filter(|&p| p != 0)
}

/// `PORT` argument for an address.
pub fn port_arg(addr: SocketAddr) -> Option<String> {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            Some(format!(
                "{},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                addr.port() >> 8,
                addr.port() & 255
            ))
        }
        IpAddr::V6(_) => None,
    }
}

/// `EPRT` argument for an address.
pub fn eprt_arg(addr: SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(ip) => format!("|1|{ip}|{}|", addr.port()),
        IpAddr::V6(ip) => format!("|2|{ip}|{}|", addr.port()),
    }
}

/// Listen for an active-mode data connection on `ip`, any port.
pub async fn listen(ip: IpAddr) -> io::Result<TcpListener> {
    let sock = if ip.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(ip, 0))?;
    sock.listen(1)
}

/// Read a data connection to its end, within `limit` of silence per read.
pub async fn read_all(stream: &mut TcpStream, limit: Duration) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = timeout(limit, stream.read(&mut buf)).await.map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("data connection silent for {limit:?}"),
            )
        })??;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > MAX_DATA {
            return Err(io::Error::other("more than 512 MiB on one data connection"));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Write everything and close our side; then wait (briefly) for the server to
/// close its side so that the final reply follows a complete transfer.
pub async fn write_all_and_close(
    stream: &mut TcpStream,
    bytes: &[u8],
    limit: Duration,
) -> io::Result<()> {
    timeout(limit.max(Duration::from_secs(1)) * 6, async {
        stream.write_all(bytes).await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "data connection stalled while sending",
        )
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasv_reply_forms() {
        let a = parse_pasv("Entering Passive Mode (127,0,0,1,195,80).").unwrap();
        assert_eq!(a, "127.0.0.1:50000".parse().unwrap());
        assert_eq!(parse_pasv("=127,0,0,1,4,1").unwrap().port(), 1025);
        assert!(parse_pasv("Entering Passive Mode (127,0,0,1,195)").is_none());
        assert!(parse_pasv("(300,0,0,1,1,1)").is_none());
    }

    #[test]
    fn epsv_reply_forms() {
        assert_eq!(
            parse_epsv("Entering Extended Passive Mode (|||50001|)"),
            Some(50001)
        );
        assert_eq!(parse_epsv("ok (!!!6446!)"), Some(6446));
        assert_eq!(parse_epsv("(|||0|)"), None);
        assert_eq!(parse_epsv("(||1|2|)"), None);
        assert_eq!(parse_epsv("no parens"), None);
    }

    #[test]
    fn port_and_eprt_args() {
        let a: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        assert_eq!(port_arg(a).unwrap(), "127,0,0,1,195,80");
        assert_eq!(eprt_arg(a), "|1|127.0.0.1|50000|");
        assert_eq!(eprt_arg("[::1]:21".parse().unwrap()), "|2|::1|21|");
    }

    async fn serve_once(bytes: &'static [u8]) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(bytes).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        });
        a
    }

    #[tokio::test]
    async fn multi_line_reply_and_bare_lf() {
        let a = serve_once(b"220-Hello\r\n more\r\n220 ready\r\n211 x\n").await;
        let mut c = Control::connect(a, Duration::from_secs(2)).await.unwrap();
        let r = c.read_reply(Duration::from_secs(2)).await.unwrap();
        assert_eq!(r.code, 220);
        assert_eq!(r.lines, ["220-Hello", " more", "220 ready"]);
        assert!(!r.bare_lf);
        let r = c.read_reply(Duration::from_secs(2)).await.unwrap();
        assert_eq!((r.code, r.bare_lf, r.text()), (211, true, "x"));
        assert!(matches!(
            c.read_reply(Duration::from_secs(2)).await,
            Err(ReadError::Closed(_))
        ));
    }

    #[tokio::test]
    async fn malformed_and_timeout() {
        let a = serve_once(b"hello\r\n").await;
        let mut c = Control::connect(a, Duration::from_secs(2)).await.unwrap();
        let r = c.read_reply(Duration::from_secs(2)).await.unwrap();
        assert_eq!(r.code, 0);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = Control::connect(l.local_addr().unwrap(), Duration::from_secs(2))
            .await
            .unwrap();
        let _held = l.accept().await.unwrap();
        assert!(matches!(
            c.read_reply(Duration::from_millis(100)).await,
            Err(ReadError::Timeout)
        ));
    }
}
