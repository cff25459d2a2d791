//! Playing one fuzz session (or one split sweep) against the target, with
//! its checks: replies well-formed, greetings, no hang, and for sweeps the
//! same reply codes whatever the split.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::Shared;
use super::input::{self, Addrs, Corpus, End, Rng, WriteMode, quoted};
use super::reply::{Event, Parser};
use crate::client;

/// Everything a session needs.
pub struct Env {
    pub addr: SocketAddr,
    pub corpus: Arc<Corpus>,
    pub sh: Arc<Shared>,
}

/// What happened in one session, kept for its crash file.
pub struct SessionLog {
    t0: Instant,
    lines: Mutex<Vec<String>>,
    /// Bytes sent on the control connection, in order.
    sent: Mutex<Vec<u8>>,
    /// Last time anything moved (control or data), ms since `t0`.
    activity: AtomicU64,
}

impl SessionLog {
    pub fn new() -> Arc<SessionLog> {
        Arc::new(SessionLog {
            t0: Instant::now(),
            lines: Mutex::new(Vec::new()),
            sent: Mutex::new(Vec::new()),
            activity: AtomicU64::new(0),
        })
    }

    pub fn note(&self, s: impl AsRef<str>) {
        let mut l = self.lines.lock().unwrap();
        if l.len() < 5000 {
            let t = self.t0.elapsed().as_secs_f64();
            l.push(format!("{t:8.3} {}", s.as_ref()));
        }
    }

    fn touch(&self) {
        self.activity
            .store(self.t0.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let now = self.t0.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.activity.load(Ordering::Relaxed)))
    }

    fn sent(&self, b: &[u8]) {
        self.sent.lock().unwrap().extend_from_slice(b);
        self.note(format!("C> {}", quoted(b)));
    }

    /// The crash file's body.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let sent = self.sent.lock().unwrap();
        s.push_str("--- bytes sent on the control connection (scenario `raw` syntax):\n");
        for chunk in sent.split_inclusive(|&c| c == b'\n') {
            s.push_str(&format!("raw {}\n", quoted(chunk)));
        }
        s.push_str("--- events (seconds since connect; C> sent, S: received, D: data, -- note):\n");
        for l in self.lines.lock().unwrap().iter() {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// Runs session `k` of the run: a fuzz session, or (every 20th) a split
/// sweep.
pub async fn run(env: &Env, k: u64) {
    if k % 20 == 3 {
        sweep(env, k).await;
    } else {
        fuzz(env, k).await;
    }
}

/// Greeting: one reply within the limit.
async fn greeting(
    rd: &mut (impl AsyncReadExt + Unpin),
    parser: &mut Parser,
    limit: Duration,
    log: &SessionLog,
) -> Result<u16, String> {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let n = match tokio::time::timeout_at(deadline, rd.read(&mut buf)).await {
            Err(_) => return Err(format!("no greeting within {limit:?}")),
            Ok(Err(e)) => return Err(format!("connection failed before the greeting: {e}")),
            Ok(Ok(0)) => return Err("the server closed the connection without a greeting".into()),
            Ok(Ok(n)) => n,
        };
        log.touch();
        if let Some(e) = parser.feed(&buf[..n]).into_iter().next() {
            match e {
                Event::Reply(r) => {
                    for l in &r.lines {
                        log.note(format!("S: {l}"));
                    }
                    return match r.code {
                        220 | 421 => Ok(r.code),
                        c => Err(format!("greeting {c}: {}", r.lines.join(" / "))),
                    };
                }
                Event::Malformed { why, .. } => return Err(format!("malformed greeting: {why}")),
            }
        }
    }
}

/// State the writer and reader of one session share.
struct Conn {
    /// Final replies received.
    finals: AtomicUsize,
    /// The writer sent FIN (or QUIT and FIN): from now on the server must
    /// finish and close.
    fin: AtomicBool,
    /// The writer wants the connection reset.
    rst: AtomicBool,
    /// The reader is done (closed, failed).
    done: AtomicBool,
    /// Data connections opened so far (their index seeds their actions).
    data_index: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

async fn fuzz(env: &Env, k: u64) {
    let sh = &env.sh;
    let seed = input::session_seed(sh.seed, k);
    let log = SessionLog::new();
    let lim = &sh.limits;
    let mut stream = match client::connect(env.addr, lim.connect).await {
        Ok(s) => s,
        Err(e) => {
            sh.stats.lock().unwrap().connect_errors += 1;
            if sh.verbose {
                eprintln!("netfuzz: session {k}: connect: {e}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            return;
        }
    };
    sh.stats.lock().unwrap().connections += 1;
    let _ = stream.set_nodelay(true);
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else {
        return;
    };
    let listener = client::listen(local.ip()).await.ok();
    let listen_port = listener
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or(1, |a| a.port());
    let plan = input::plan(seed, &env.corpus, &Addrs { local, listen_port });
    log.note(format!(
        "-- session {k} (seed {seed:#018x}) from {local} to {peer}: {}; active-mode listener on port {listen_port}",
        plan.summary
    ));
    let mut parser = Parser::new();
    let (mut rd, mut wr) = stream.split();
    match greeting(&mut rd, &mut parser, lim.greeting, &log).await {
        Ok(220) => {}
        Ok(_) => {
            sh.stats.lock().unwrap().refused += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        Err(why) => {
            sh.fail(k, &why, &log);
            return;
        }
    }
    let conn = Conn {
        finals: AtomicUsize::new(0),
        fin: AtomicBool::new(false),
        rst: AtomicBool::new(false),
        done: AtomicBool::new(false),
        data_index: AtomicU64::new(0),
        tasks: Mutex::new(Vec::new()),
    };
    sh.stats.lock().unwrap().sessions += 1;

    // Active mode: the server connects here after PORT/EPRT.
    let mut accepting = None;
    if let Some(l) = listener {
        let (log2, sh2) = (log.clone(), sh.clone());
        let count = Arc::new(AtomicU64::new(1 << 32));
        let h = tokio::spawn(async move {
            for _ in 0..16 {
                let Ok((s, from)) = l.accept().await else {
                    return;
                };
                if from.ip() != peer.ip() {
                    log2.note(format!(
                        "D: active connection from {from}, not the server: dropped"
                    ));
                    continue;
                }
                let i = count.fetch_add(1, Ordering::Relaxed);
                log2.note(format!("D: active connection from {from}"));
                let dseed = input::session_seed(seed, i);
                tokio::spawn(data(
                    s,
                    dseed,
                    format!("active {i}"),
                    log2.clone(),
                    sh2.clone(),
                ));
            }
        });
        accepting = Some(h);
    }

    let writer = write_plan(env, k, seed, &plan, &mut wr, &conn, &log);
    let reader = read_replies(env, k, seed, peer.ip(), &mut rd, &mut parser, &conn, &log);
    tokio::join!(writer, reader);
    if conn.rst.load(Ordering::Relaxed) {
        let _ = stream.set_zero_linger();
        sh.stats.lock().unwrap().resets += 1;
    }
    drop(stream);
    if let Some(h) = accepting {
        h.abort();
    }
    // Data connections end on their own (bounded); wait for them a little.
    let tasks = std::mem::take(&mut *conn.tasks.lock().unwrap());
    let until = tokio::time::Instant::now() + lim.grace;
    for mut t in tasks {
        if tokio::time::timeout_at(until, &mut t).await.is_err() {
            t.abort();
        }
    }
    log.note("-- session over");
    sh.trace(k, &log);
}

/// Writes the plan as its mode says; ends with FIN or a reset.
async fn write_plan(
    env: &Env,
    k: u64,
    seed: u64,
    plan: &input::Plan,
    wr: &mut (impl AsyncWriteExt + Unpin),
    conn: &Conn,
    log: &SessionLog,
) {
    let sh = &env.sh;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let stream = plan.stream();
    // Unit ends, to count commands.
    let mut ends = Vec::new();
    let mut at = 0;
    for u in &plan.units {
        at += u.len();
        ends.push(at);
    }
    // The chunks and the pause before each.
    let mut chunks: Vec<(usize, usize, Duration, bool)> = Vec::new(); // (from, to, pause, wait for reply)
    match plan.mode {
        WriteMode::Pipelined => chunks.push((0, stream.len(), Duration::ZERO, false)),
        WriteMode::Interactive | WriteMode::Drip => {
            let mut from = 0;
            for &to in &ends {
                let pause = if plan.mode == WriteMode::Drip {
                    Duration::from_millis(rng.below(50))
                } else {
                    Duration::ZERO
                };
                let ended = matches!(stream.get(to.wrapping_sub(1)), Some(b'\n' | b'\r'));
                chunks.push((
                    from,
                    to,
                    pause,
                    plan.mode == WriteMode::Interactive && ended,
                ));
                from = to;
            }
        }
        WriteMode::Bytewise => {
            let mut from = 0;
            while from < stream.len() {
                let n = if stream.len() > 1500 {
                    rng.range(1, 16) as usize
                } else {
                    1
                };
                let to = (from + n).min(stream.len());
                chunks.push((from, to, Duration::from_millis(rng.below(3)), false));
                from = to;
            }
        }
        WriteMode::Splits => {
            let mut from = 0;
            for &c in plan.cuts.iter().chain(std::iter::once(&stream.len())) {
                if c > from && c <= stream.len() {
                    chunks.push((from, c, Duration::from_millis(rng.range(5, 30)), false));
                    from = c;
                }
            }
        }
    }
    let rst_at = match plan.end {
        End::RstAt(n) => Some(n),
        _ => None,
    };
    let mut written = 0usize;
    let mut cut_short = false;
    'chunks: for (from, to, pause, wait) in chunks {
        if conn.done.load(Ordering::Relaxed) {
            break;
        }
        if Instant::now() >= sh.deadline || sh.stopping() {
            log.note("-- deadline: stop writing");
            cut_short = true;
            break;
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let mut to = to;
        if let Some(r) = rst_at {
            if r < to {
                to = r.max(from);
            }
        }
        let before = conn.finals.load(Ordering::Relaxed);
        if to > from {
            let chunk = &stream[from..to];
            log.sent(chunk);
            match tokio::time::timeout(sh.limits.gap, wr.write_all(chunk)).await {
                Err(_) => {
                    sh.fail(
                        k,
                        &format!(
                            "hang: the server read none of our bytes for {:?}",
                            sh.limits.gap
                        ),
                        log,
                    );
                    conn.rst.store(true, Ordering::Relaxed);
                    return;
                }
                Ok(Err(e)) => {
                    log.note(format!("-- write failed: {e}"));
                    break 'chunks;
                }
                Ok(Ok(())) => {}
            }
            written = to;
            log.touch();
        }
        if rst_at.is_some_and(|r| r <= written) {
            break;
        }
        if wait {
            let until = Instant::now() + Duration::from_secs(2);
            while conn.finals.load(Ordering::Relaxed) == before
                && Instant::now() < until
                && !conn.done.load(Ordering::Relaxed)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    {
        let mut st = sh.stats.lock().unwrap();
        st.commands += ends.iter().filter(|&&e| e <= written).count() as u64;
        st.bytes += written as u64;
    }
    let reset = !cut_short && matches!(plan.end, End::Rst | End::RstAt(_));
    if reset {
        log.note("-- reset");
        conn.rst.store(true, Ordering::Relaxed);
    } else {
        let _ = wr.shutdown().await;
        log.note("-- FIN sent");
        log.touch();
        conn.fin.store(true, Ordering::Relaxed);
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_replies(
    env: &Env,
    k: u64,
    seed: u64,
    peer: IpAddr,
    rd: &mut (impl AsyncReadExt + Unpin),
    parser: &mut Parser,
    conn: &Conn,
    log: &Arc<SessionLog>,
) {
    let sh = &env.sh;
    let lim = &sh.limits;
    let mut buf = vec![0u8; 8192];
    let mut malformed = false;
    let mut last_code = 0;
    loop {
        if conn.rst.load(Ordering::Relaxed) {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                if let Some(Event::Malformed { why, line }) = parser.finish() {
                    log.note(format!("S? {}", quoted(&line)));
                    if !malformed {
                        sh.fail(k, &format!("malformed reply: {why}"), log);
                    }
                }
                log.note("-- the server closed the connection");
                if (100..200).contains(&last_code) {
                    sh.fail(
                        k,
                        &format!(
                            "the server closed the control connection after {last_code} without the transfer's final reply"
                        ),
                        log,
                    );
                }
                break;
            }
            Ok(Ok(n)) => {
                log.touch();
                for e in parser.feed(&buf[..n]) {
                    match e {
                        Event::Reply(r) => {
                            for l in &r.lines {
                                log.note(format!("S: {l}"));
                            }
                            sh.count_reply(r.code);
                            last_code = r.code;
                            if r.code >= 200 {
                                conn.finals.fetch_add(1, Ordering::Relaxed);
                            }
                            let port = match r.code {
                                227 => client::parse_pasv(r.text()).map(|a| a.port()),
                                229 => client::parse_epsv(r.text()),
                                _ => None,
                            };
                            if let Some(port) = port {
                                passive(env, seed, SocketAddr::new(peer, port), conn, log);
                            }
                        }
                        Event::Malformed { why, line } => {
                            log.note(format!("S? {}", quoted(&line)));
                            if !malformed {
                                malformed = true;
                                sh.fail(k, &format!("malformed reply: {why}"), log);
                            }
                        }
                    }
                }
            }
            Err(_) => {
                // Quiet. After our FIN the server must finish and close
                // within the gap; past the deadline we stop waiting.
                if conn.fin.load(Ordering::Relaxed) && log.idle() > lim.gap {
                    sh.fail(
                        k,
                        &format!(
                            "hang: after our FIN, nothing from the server for {:?} and the connection is still open",
                            lim.gap
                        ),
                        log,
                    );
                    conn.rst.store(true, Ordering::Relaxed);
                    break;
                }
                if Instant::now() > sh.deadline + lim.grace || sh.stopping() {
                    log.note("-- cut at the deadline");
                    sh.stats.lock().unwrap().cut += 1;
                    conn.rst.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
    conn.done.store(true, Ordering::Relaxed);
}

/// A passive data connection to `to` (the server's address, the port of a
/// 227/229 reply), handled in a task of its own.
fn passive(env: &Env, seed: u64, to: SocketAddr, conn: &Conn, log: &Arc<SessionLog>) {
    let i = conn.data_index.fetch_add(1, Ordering::Relaxed);
    let dseed = input::session_seed(seed, i);
    let mut rng = Rng::new(dseed);
    // Sometimes no connection at all: a transfer then waits for the
    // server's data timeout.
    if rng.pct(2) {
        log.note(format!("D: passive {i} to {to}: not connecting"));
        return;
    }
    let (log, sh) = (log.clone(), env.sh.clone());
    let h = tokio::spawn(async move {
        if rng.pct(10) {
            tokio::time::sleep(Duration::from_millis(rng.below(300))).await;
        }
        match client::connect(to, Duration::from_secs(5)).await {
            Ok(s) => {
                log.touch();
                data(s, dseed ^ 1, format!("passive {i} to {to}"), log, sh).await
            }
            Err(e) => log.note(format!("D: passive {i} to {to}: {e}")),
        }
    });
    conn.tasks.lock().unwrap().push(h);
}

/// One data connection: write some bytes and read to the end, or drop it,
/// reset it, hold it a while.
async fn data(mut s: TcpStream, seed: u64, what: String, log: Arc<SessionLog>, sh: Arc<Shared>) {
    sh.stats.lock().unwrap().data_conns += 1;
    let mut rng = Rng::new(seed);
    let gap = sh.limits.gap;
    let act = rng.weighted(&[60, 12, 10, 10, 8]);
    log.note(format!(
        "D: {what}: connected, {}",
        [
            "write some, read to the end",
            "read only",
            "close at once",
            "reset at once",
            "hold, then write and read"
        ][act]
    ));
    let mut sent = 0usize;
    let mut got = 0usize;
    let how = match act {
        2 => {
            drop(s);
            "closed at once".to_string()
        }
        3 => {
            let _ = s.set_zero_linger();
            drop(s);
            "reset at once".to_string()
        }
        _ => {
            if act == 4 {
                tokio::time::sleep(Duration::from_millis(rng.range(200, 2000))).await;
            }
            if act != 1 {
                let n = match rng.weighted(&[20, 40, 35, 5]) {
                    0 => 0,
                    1 => rng.range(1, 512),
                    2 => rng.range(512, 8192),
                    _ => rng.range(8192, 65536),
                } as usize;
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                if let Ok(Ok(())) = tokio::time::timeout(gap, s.write_all(&bytes)).await {
                    sent = n;
                }
                let _ = s.shutdown().await;
                log.note(format!("D: {what}: sent {n} bytes and FIN"));
                log.touch();
            }
            // Read to the end (a download), within the gap per read; at
            // most 4 MiB. Read-only connections give up after 3 s of
            // silence (an upload waiting for our end).
            let idle = if act == 1 {
                Duration::from_secs(3)
            } else {
                gap
            };
            let mut buf = vec![0u8; 16384];
            let mut end = "server closed";
            loop {
                match tokio::time::timeout(idle, s.read(&mut buf)).await {
                    Ok(Ok(0)) => break,
                    Ok(Ok(n)) => {
                        got += n;
                        log.touch();
                        if got > 4 << 20 {
                            let _ = s.set_zero_linger();
                            end = "reset after 4 MiB";
                            break;
                        }
                    }
                    Ok(Err(_)) => {
                        end = "reset by the server";
                        break;
                    }
                    Err(_) => {
                        end = "silent, closed by us";
                        break;
                    }
                }
            }
            format!("sent {sent}, received {got} bytes, {end}")
        }
    };
    log.note(format!("D: {what}: {how}"));
}

/// A split sweep: a short, state-neutral payload sent whole once, then
/// once for every split point in two writes; every run must get the same
/// reply codes.
async fn sweep(env: &Env, k: u64) {
    let sh = &env.sh;
    let seed = input::session_seed(sh.seed, k);
    let payload = input::sweep_payload(seed);
    let log = SessionLog::new();
    log.note(format!(
        "-- session {k} (seed {seed:#018x}): split sweep of {} bytes: {}",
        payload.len(),
        quoted(&payload)
    ));
    sh.stats.lock().unwrap().sweeps += 1;
    let Some(want) = sweep_one(env, k, &payload, None, &log).await else {
        return;
    };
    log.note(format!("-- unsplit: codes {want:?}"));
    for cut in 1..payload.len() {
        if Instant::now() >= sh.deadline || sh.stopping() {
            log.note(format!("-- deadline: sweep stopped before split {cut}"));
            return;
        }
        let Some(got) = sweep_one(env, k, &payload, Some(cut), &log).await else {
            return;
        };
        if got != want {
            sh.fail(
                k,
                &format!(
                    "split at byte {cut} changes the replies: {got:?} instead of {want:?} (before the split: {})",
                    quoted(&payload[..cut])
                ),
                &log,
            );
            return;
        }
    }
    log.note("-- every split gave the same codes");
    sh.trace(k, &log);
}

/// One connection of a sweep: its reply codes, or `None` after a failure
/// (already reported) or when no session slot came free.
async fn sweep_one(
    env: &Env,
    k: u64,
    payload: &[u8],
    cut: Option<usize>,
    log: &Arc<SessionLog>,
) -> Option<Vec<u16>> {
    let sh = &env.sh;
    let lim = &sh.limits;
    for _attempt in 0..50 {
        if sh.stopping() {
            return None;
        }
        let mut s = match client::connect(env.addr, lim.connect).await {
            Ok(s) => s,
            Err(_) => {
                sh.stats.lock().unwrap().connect_errors += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        sh.stats.lock().unwrap().connections += 1;
        let _ = s.set_nodelay(true);
        let mut parser = Parser::new();
        match greeting(&mut s, &mut parser, lim.greeting, log).await {
            Ok(220) => {}
            Ok(_) => {
                sh.stats.lock().unwrap().refused += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(why) => {
                sh.fail(k, &why, log);
                return None;
            }
        }
        let parts: Vec<&[u8]> = match cut {
            None => vec![payload],
            Some(c) => vec![&payload[..c], &payload[c..]],
        };
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            if s.write_all(p).await.is_err() {
                break;
            }
        }
        let _ = s.shutdown().await;
        {
            let mut st = sh.stats.lock().unwrap();
            st.bytes += payload.len() as u64;
            st.commands += payload.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        let mut codes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tokio::time::timeout(lim.gap, s.read(&mut buf)).await {
                Err(_) => {
                    sh.fail(
                        k,
                        &format!(
                            "hang: split at {cut:?}: after our FIN, nothing for {:?} (codes so far {codes:?})",
                            lim.gap
                        ),
                        log,
                    );
                    return None;
                }
                Ok(Ok(0)) | Ok(Err(_)) => {
                    if let Some(Event::Malformed { why, .. }) = parser.finish() {
                        sh.fail(k, &format!("malformed reply: {why}"), log);
                        return None;
                    }
                    return Some(codes);
                }
                Ok(Ok(n)) => {
                    for e in parser.feed(&buf[..n]) {
                        match e {
                            Event::Reply(r) => {
                                sh.count_reply(r.code);
                                codes.push(r.code);
                            }
                            Event::Malformed { why, line } => {
                                log.note(format!("S? {}", quoted(&line)));
                                sh.fail(
                                    k,
                                    &format!("malformed reply (split at {cut:?}): {why}"),
                                    log,
                                );
                                return None;
                            }
                        }
                    }
                }
            }
        }
    }
    log.note("-- no session slot in 50 attempts: sweep skipped");
    None
}
