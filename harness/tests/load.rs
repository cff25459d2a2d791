//! Load on the boards (issue 7, "Load"): the virtual board (`sim`, the
//! firmware application on smoltcp over TAP) and the firmware under QEMU
//! (`qemu`: QEMU 7.2; `qemu-10`: QEMU 10.0.2, which stores about half as
//! fast). One board at a time; all twelve tests take about 100 s on two
//! busy cores. Every client is `harness::load`'s, in the board's
//! network namespace; every test ends with the board stopped and its SD
//! image checked by `fsck.fat -n` (and read back with mtools where files
//! were written).
//!
//! - `mixed_load`: four clients (the session limit) each run 50 mixed
//!   operations (STOR, RETR, LIST, rename, delete) while four more arrive,
//!   hear `421`, retry with a backoff until served and run theirs: no
//!   failure, every RETR equal to what was stored, every LIST equal to the
//!   model, the card's final tree equal to the models.
//! - `session_limit`: the fifth client hears `421` within a second and is
//!   closed, and so does every client of a burst of four arriving at once
//!   (never a reset); once one of the four leaves, a new client gets in at
//!   once.
//! - `pipelined_commands`: 1000 NOOPs written at once (12 times the
//!   control window) all answered in order; prints the time and stalls.
//! - `abrupt_disconnects`: 200 resets (RST) in the middle of logins,
//!   listings, downloads and uploads (control or data connection, or both),
//!   100 one after the other and 100 from four clients at once;
//!   afterwards `STAT` shows one session and no open file (and the QEMU
//!   board's console, command `s`, none and none), a normal session
//!   works, and four sessions transferring at once (every socket back in
//!   its pool) work while a fifth client hears `421`.
//! - `slow_clients`: with the board's timeouts shortened (idle 10 s, data
//!   5 s: `--idle-timeout`/`--data-timeout` of sim and of the QEMU script),
//!   a client that stops reading mid-RETR gets `426` within the data
//!   timeout and `421` at the idle timeout, a client that types a command a
//!   byte a second gets `421` at the idle timeout and is closed, a client
//!   that stops sending mid-STOR gets `426` at the data timeout; meanwhile
//!   another client's transfers complete.
//!
//! Sizes: files of 1 KB to 2 MiB on the virtual board, 1 to 64 KB on QEMU
//! (it stores 250-650 kB/s).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::load::{self, Abrupt, AbruptPlan, Attempts, Error, Ftp, Mix, Retry, Stat, Tally};
use harness::target::{Kind, StartOptions, Target};
use harness::testkit::*;

harness::on_every_board!(
    mixed_load: [],
    session_limit: [],
    pipelined_commands: [],
    abrupt_disconnects: [],
    slow_clients: [],
);

const USER: &str = "test";
const PASS: &str = "test";
/// How long one reply or data read may take.
const LIMIT: Duration = Duration::from_secs(60);

fn is_qemu(t: &Target) -> bool {
    matches!(t.kind, Kind::Qemu(_))
}

fn addr() -> SocketAddr {
    harness::netns::board_addr(false)
}

/// Run `f` on a thread of its own inside the board's namespace.
fn spawn_in<T: Send + 'static>(
    b: &Board,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = b.netns.clone();
    std::thread::spawn(move || {
        harness::netns::enter(&ns).unwrap();
        f()
    })
}

fn in_ns<T: Send + 'static>(b: &Board, f: impl FnOnce() -> T + Send + 'static) -> T {
    harness::netns::run_in_blocking(&b.netns, f).unwrap()
}

#[track_caller]
fn ok<T>(what: &str, r: load::Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// `STAT` from a fresh session (which counts itself).
fn stat_now() -> load::Result<Stat> {
    let mut f = Ftp::login(addr(), USER, PASS, LIMIT)?;
    let s = f.stat()?;
    f.quit()?;
    Ok(s)
}

/// Wait until a fresh session's `STAT` shows it alone with no file open.
fn settle(within: Duration) -> (Stat, Duration) {
    let t0 = Instant::now();
    loop {
        let s = load::login_retrying(addr(), USER, PASS, LIMIT, Retry::default(), 7).and_then(
            |(mut f, _)| {
                let s = f.stat()?;
                f.quit()?;
                Ok(s)
            },
        );
        match s {
            Ok(s) if s.sessions == 1 && s.open_files == 0 => return (s, t0.elapsed()),
            Ok(s) if t0.elapsed() > within => {
                panic!("not settled after {within:?}: {s:?}")
            }
            Err(e) if t0.elapsed() > within => panic!("not settled after {within:?}: {e}"),
            _ => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// The QEMU board's console (`s`) once no client is connected: no session,
/// no open file, no socket held or closing (`None` for the virtual board,
/// which has no console; its `STAT` says the same).
fn console_idle(b: &Board) -> Option<load::ConsoleStats> {
    let sock = b.server.as_ref()?.console.clone()?;
    let t0 = Instant::now();
    loop {
        let s = load::console_stats(&sock, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("the console at {}: {e}", sock.display()));
        let sockets_idle = s
            .sockets
            .is_none_or(|[_, _, owned, closing]| owned + closing == 0);
        if (s.sessions, s.open_files) == (0, 0) && sockets_idle {
            return Some(s);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the board's console after the clients left: {}",
            s.line
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------
// Four clients at work, four more waiting
// ---------------------------------------------------------------------------

fn mix_for(t: &Target, client: u64) -> Mix {
    let (min_size, max_size) = if is_qemu(t) {
        (1024, 64 * 1024)
    } else {
        (1024, 2 << 20)
    };
    Mix {
        ops: 50,
        min_size,
        max_size,
        seed: 1000 + client,
    }
}

struct Done {
    client: u64,
    tally: Tally,
    files: BTreeMap<String, Vec<u8>>,
    attempts: Attempts,
    took: Duration,
}

fn work(t: Target, client: u64, mut f: Ftp, attempts: Attempts) -> load::Result<Done> {
    let t0 = Instant::now();
    let dir = format!("/c{client}");
    f.mkd(&dir)?;
    let mut files = BTreeMap::new();
    let tally = load::run_mix(&mut f, &dir, &mix_for(&t, client), &mut files)?;
    f.quit()?;
    Ok(Done {
        client,
        tally,
        files,
        attempts,
        took: t0.elapsed(),
    })
}

fn mixed_load(t: Target) {
    let card = Card::new();
    let b = Board::start(t, &card);
    let (logged_in_tx, logged_in) = mpsc::channel::<u64>();
    let (refused_tx, refused) = mpsc::channel::<u64>();
    let mut go = Vec::new();
    let mut threads = Vec::new();
    // The first four take every session slot and hold it until each late
    // client has been turned away at least once.
    for c in 0..4u64 {
        let (go_tx, go_rx) = mpsc::channel::<()>();
        go.push(go_tx);
        let logged_in_tx = logged_in_tx.clone();
        threads.push(spawn_in(&b, move || {
            let f = Ftp::login(addr(), USER, PASS, LIMIT)?;
            logged_in_tx.send(c).unwrap();
            go_rx
                .recv_timeout(Duration::from_secs(120))
                .map_err(|_| Error::Wrong("no go".into()))?;
            work(t, c, f, Attempts::default())
        }));
    }
    for _ in 0..4 {
        logged_in
            .recv_timeout(Duration::from_secs(60))
            .expect("one of the first four clients did not log in");
    }
    let t0 = Instant::now();
    for c in 4..8u64 {
        let refused_tx = refused_tx.clone();
        threads.push(spawn_in(&b, move || {
            // Arrivals a little apart, as clients do.
            std::thread::sleep(Duration::from_millis(150 * (c - 4)));
            let mut first = Attempts::default();
            let give_up = Instant::now() + Duration::from_secs(60);
            // Until the server says it is full (a refused connection, when
            // every control socket is busy, is retried as well).
            loop {
                match Ftp::connect(addr(), LIMIT) {
                    Err(Error::Busy(_)) => {
                        first.busy += 1;
                        break;
                    }
                    Err(Error::Refused(_)) if Instant::now() < give_up => first.refused += 1,
                    Ok(_) => {
                        return Err(Error::Wrong(format!(
                            "late client {c} was served while four sessions were open"
                        )));
                    }
                    Err(e) => return Err(e),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            refused_tx.send(c).unwrap();
            let retry = Retry {
                give_up: Duration::from_secs(600),
                ..Retry::default()
            };
            let (f, then) = load::login_retrying(addr(), USER, PASS, LIMIT, retry, c)?;
            let attempts = Attempts {
                busy: first.busy + then.busy,
                refused: first.refused + then.refused,
            };
            work(t, c, f, attempts)
        }));
    }
    for _ in 0..4 {
        refused
            .recv_timeout(Duration::from_secs(90))
            .expect("a late client never heard 421");
    }
    for g in &go {
        g.send(()).unwrap();
    }
    let mut failures = Vec::new();
    let mut done = Vec::new();
    for (i, th) in threads.into_iter().enumerate() {
        match th.join() {
            Ok(Ok(d)) => done.push(d),
            Ok(Err(e)) => failures.push(format!("client {i}: {e}")),
            Err(p) => failures.push(format!("client {i} panicked: {p:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 8 clients failed:\n  {}\n--- board log (tail)\n{}",
        failures.len(),
        failures.join("\n  "),
        tail(&b.log(), 40)
    );
    let elapsed = t0.elapsed();
    let mut total = Tally::default();
    for d in &done {
        total.add(&d.tally);
        assert_eq!(d.tally.ops(), 50, "client {}", d.client);
        if d.client >= 4 {
            assert!(
                d.attempts.busy >= 1,
                "late client {} never heard 421",
                d.client
            );
        }
    }
    eprintln!(
        "{}: 8 clients x 50 ops in {:.1} s: {} STOR, {} RETR, {} LIST, {} rename, {} delete; {} kB up, {} kB down; late clients: {}",
        t.name,
        elapsed.as_secs_f64(),
        total.stor,
        total.retr,
        total.list,
        total.rename,
        total.dele,
        total.bytes_up / 1000,
        total.bytes_down / 1000,
        done.iter()
            .filter(|d| d.client >= 4)
            .map(|d| format!(
                "c{} 421 x{} refused x{} ({:.1} s of work)",
                d.client,
                d.attempts.busy,
                d.attempts.refused,
                d.took.as_secs_f64()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let s = in_ns(&b, stat_now);
    let s = ok("STAT after the load", s);
    assert_eq!((s.sessions, s.open_files), (1, 0), "{s:?}");
    console_idle(&b);
    b.stop();
    card.assert_clean();
    for d in &done {
        let want: Tree = d
            .files
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        same_tree(
            &format!("/c{} on the card", d.client),
            &card.read_tree(&format!("c{}", d.client)),
            &want,
        );
    }
}

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// The session limit
// ---------------------------------------------------------------------------

/// Connect while the server is full: `421` within a second, then closed
/// (FIN, not a reset). No connection may be refused (RST) on the way: the
/// board keeps a spare control socket and refuser sockets for clients past
/// the limit. Returns how long it took.
fn refused_at_once() -> Duration {
    let t0 = Instant::now();
    let s = match std::net::TcpStream::connect_timeout(&addr(), Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => panic!("the client past the limit was not accepted: {e}"),
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut r = s;
    let closed = r.read_to_end(&mut got);
    let took = t0.elapsed();
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(
        text.starts_with("421 "),
        "the client past the limit heard {text:?}"
    );
    assert!(
        closed.is_ok(),
        "the refused connection was not closed: {closed:?} after {text:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "421 and close took {took:?} (wanted: at once)"
    );
    took
}

/// Clients past the limit arriving at the same moment (threads released
/// together): every one hears `421` and a close, none a reset.
fn burst_refused(n: usize) -> Vec<Duration> {
    let gate = std::sync::Arc::new(std::sync::Barrier::new(n));
    let clients: Vec<_> = (0..n)
        .map(|_| {
            let gate = gate.clone();
            std::thread::spawn(move || {
                gate.wait();
                refused_at_once()
            })
        })
        .collect();
    clients
        .into_iter()
        .map(|c| c.join().expect("a client of the burst"))
        .collect()
}

/// Clients past the limit at once, besides the spare control socket's one.
const BURST: usize = 4;

fn session_limit(t: Target) {
    let card = Card::new();
    let b = Board::start(t, &card);
    let name = t.name;
    in_ns(&b, move || {
        let mut four = Vec::new();
        for i in 1..=4 {
            let mut f = ok("login", Ftp::login(addr(), USER, PASS, LIMIT));
            let s = ok("STAT", f.stat());
            assert_eq!(
                (s.sessions, s.max_sessions, s.open_files),
                (i, 4, 0),
                "STAT of session {i}"
            );
            four.push(f);
        }
        // Past the limit, again and again: no slot is taken by a refusal.
        let took: Vec<Duration> = (0..3).map(|_| refused_at_once()).collect();
        // A burst past the limit, twice: all hear 421, none a reset.
        let bursts: Vec<Duration> = (0..2).flat_map(|_| burst_refused(BURST)).collect();
        for f in four.iter_mut() {
            let s = ok("STAT after the refusals", f.stat());
            assert_eq!(s.sessions, 4, "{s:?}");
        }
        let f = four.pop().unwrap();
        ok("QUIT", f.quit());
        // One left: a new client gets in at once, never refused.
        let t0 = Instant::now();
        let mut newcomer = ok(
            "a client after one of four left",
            Ftp::login(addr(), USER, PASS, LIMIT),
        );
        let s = ok("STAT", newcomer.stat());
        assert_eq!(s.sessions, 4, "{s:?}");
        let newcomer_ms = t0.elapsed().as_secs_f64() * 1000.0;
        // Full again.
        refused_at_once();
        burst_refused(BURST);
        let ms = |d: &Duration| d.as_millis().to_string();
        eprintln!(
            "{name}: 421 and close in {} ms; bursts of {BURST}: {} ms; the newcomer got in after {newcomer_ms:.0} ms",
            took.iter().map(ms).collect::<Vec<_>>().join(", "),
            bursts.iter().map(ms).collect::<Vec<_>>().join(", "),
        );
        ok("QUIT", newcomer.quit());
        for f in four {
            ok("QUIT", f.quit());
        }
        // All gone: four new sessions at once.
        let again: Vec<Ftp> = (0..4)
            .map(|_| {
                ok(
                    "login after all left",
                    Ftp::login(addr(), USER, PASS, LIMIT),
                )
            })
            .collect();
        for f in again {
            ok("QUIT", f.quit());
        }
    });
    b.stop();
    card.assert_clean();
}

/// Commands written all at once, more than the board's control window
/// (512 bytes) holds: every one answered, in order. Prints how long they
/// took and the stalls (no reply for 150 ms or more), the figure of a
/// window the sender does not reopen until its zero-window probe.
fn pipelined_commands(t: Target) {
    const N: usize = 1000;
    let card = Card::new();
    let b = Board::start(t, &card);
    let name = t.name;
    in_ns(&b, move || {
        let mut f = ok("login", Ftp::login(addr(), USER, PASS, LIMIT));
        let mut w = f.stream().try_clone().unwrap();
        let lines = "NOOP\r\n".repeat(N);
        let t0 = Instant::now();
        let writer = std::thread::spawn(move || w.write_all(lines.as_bytes()));
        let mut last = t0;
        let mut stalls = Vec::new();
        for i in 0..N {
            let r = ok("a NOOP's reply", f.read_reply("NOOP"));
            assert_eq!(r.code, 200, "reply {i}: {r:?}");
            let gap = last.elapsed();
            last = Instant::now();
            if gap >= Duration::from_millis(150) {
                stalls.push(gap);
            }
        }
        writer.join().unwrap().expect("writing the commands");
        let took = t0.elapsed();
        let s = ok("STAT", f.stat());
        assert_eq!(s.sessions, 1, "{s:?}");
        eprintln!(
            "{name}: {N} pipelined NOOPs in {:.0} ms, {} stalls of 150 ms or more ({} ms in all)",
            took.as_secs_f64() * 1000.0,
            stalls.len(),
            stalls.iter().map(Duration::as_millis).sum::<u128>()
        );
        ok("QUIT", f.quit());
    });
    b.stop();
    card.assert_clean();
}

// ---------------------------------------------------------------------------
// Abrupt disconnects
// ---------------------------------------------------------------------------

const RESETS: usize = 200;

fn abrupt_disconnects(t: Target) {
    let qemu = is_qemu(&t);
    let big_len = if qemu { 256 * 1024 } else { 4 << 20 };
    let big = load::content(big_len, 77);
    let card = Card::new();
    card.put("big.bin", &big);
    let mut many = Tree::new();
    for i in 0..80 {
        many.insert(
            format!("a rather long file name for a long listing {i:03}.txt"),
            Some(format!("{i}\n").into_bytes()),
        );
    }
    card.put_tree("many", &many);
    card.put_tree("up", &Tree::new());
    let b = Board::start(t, &card);
    let before = ok("STAT before", in_ns(&b, stat_now));
    assert_eq!((before.sessions, before.open_files), (1, 0), "{before:?}");
    let console_before = console_idle(&b);
    let plan = AbruptPlan {
        user: USER.into(),
        pass: PASS.into(),
        big_file: "/big.bin".into(),
        long_dir: "/many".into(),
        upload_dir: "/up".into(),
        limit: Duration::from_secs(30),
        retry: Retry {
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            give_up: Duration::from_secs(60),
        },
    };
    let t0 = Instant::now();
    // Half one after the other, half from four clients at once (then the
    // board is often full: logins retry on 421).
    let lane = |ns: Vec<usize>| {
        let plan = plan.clone();
        spawn_in(&b, move || {
            ns.into_iter()
                .map(|n| {
                    let k = Abrupt::ALL[n % Abrupt::ALL.len()];
                    let a = load::abrupt(addr(), k, n, &plan)
                        .unwrap_or_else(|e| panic!("reset {n} ({k:?}): {e}"));
                    (k, a)
                })
                .collect::<Vec<_>>()
        })
    };
    let mut results = lane((0..RESETS / 2).collect()).join().unwrap();
    let four: Vec<_> = (0..4)
        .map(|l| lane((RESETS / 2..RESETS).filter(|n| n % 4 == l).collect()))
        .collect();
    for l in four {
        results.extend(l.join().unwrap());
    }
    let mut counts = BTreeMap::<String, usize>::new();
    let (mut busy, mut refused) = (0, 0);
    for (k, a) in &results {
        busy += a.busy;
        refused += a.refused;
        *counts.entry(format!("{k:?}")).or_default() += 1;
    }
    assert_eq!(results.len(), RESETS);
    let resets_took = t0.elapsed();
    // Everything given back: one session (the one asking), no open file.
    let (after, settled) = in_ns(&b, || settle(Duration::from_secs(45)));
    eprintln!(
        "{}: {RESETS} resets in {:.1} s ({:?}); logins turned away meanwhile: 421 x{busy}, refused x{refused}; \
         STAT before {before:?}, after {after:?} (settled in {:.1} s)",
        t.name,
        resets_took.as_secs_f64(),
        counts,
        settled.as_secs_f64()
    );
    let console_after = console_idle(&b);
    if let (Some(x), Some(y)) = (&console_before, &console_after) {
        eprintln!(
            "{} console before: {}\n{} console after:  {}",
            t.name, x.line, t.name, y.line
        );
        assert_eq!(
            x.sockets, y.sockets,
            "the board's sockets (listening, data free, owned, closing) before and after the resets"
        );
    }
    // A normal session works.
    let data = load::content(if qemu { 40_000 } else { 1 << 20 }, 5);
    let d2 = data.clone();
    let big2 = big.clone();
    in_ns(&b, move || {
        let mut f = ok("login", Ftp::login(addr(), USER, PASS, LIMIT));
        ok("STOR", f.stor("/after.bin", &d2));
        same_bytes("RETR /after.bin", &ok("RETR", f.retr("/after.bin")), &d2);
        same_bytes("RETR /big.bin", &ok("RETR", f.retr("/big.bin")), &big2);
        let names = load::listing_names(&ok("LIST", f.list("/many"))).unwrap();
        assert_eq!(names.len(), 80);
        ok("QUIT", f.quit());
    });
    // Every socket is back in its pool: four sessions transferring at once,
    // and the fifth still hears 421.
    let (ready_tx, ready) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    let four: Vec<_> = (0..4)
        .map(|_| {
            let (ready_tx, go_rx, big) = (ready_tx.clone(), go_rx.clone(), big.clone());
            spawn_in(&b, move || {
                let mut f = Ftp::login(addr(), USER, PASS, LIMIT)?;
                ready_tx.send(()).unwrap();
                let _ = go_rx.lock().unwrap().recv_timeout(Duration::from_secs(60));
                let mut d = f.passive()?;
                f.start("RETR /big.bin")?;
                let mut got = Vec::new();
                d.read_to_end(&mut got)
                    .map_err(|e| Error::Wrong(e.to_string()))?;
                drop(d);
                f.finish("RETR")?;
                if got != big {
                    return Err(Error::Wrong(format!("RETR: {} bytes, wrong", got.len())));
                }
                f.quit()
            })
        })
        .collect();
    for _ in 0..4 {
        ready
            .recv_timeout(Duration::from_secs(60))
            .expect("four sessions after the resets");
    }
    in_ns(&b, refused_at_once);
    for _ in 0..4 {
        go_tx.send(()).unwrap();
    }
    for th in four {
        ok("a session of four after the resets", th.join().unwrap());
    }
    let s = ok("STAT at the end", in_ns(&b, stat_now));
    assert_eq!((s.sessions, s.open_files), (1, 0), "{s:?}");
    console_idle(&b);
    let log = b.stop();
    if t.name == "sim" {
        // The resets did reach the board: a session each (a connection
        // reset before the greeting may be gone before it is accepted).
        let sessions = log.matches("] connected from ").count();
        let want = RESETS - counts["BeforeGreeting"];
        assert!(
            sessions >= want,
            "{sessions} sessions in the board's log, expected at least {want}"
        );
    }
    assert!(
        !log.contains("panicked"),
        "the board panicked:\n{}",
        tail(&log, 40)
    );
    card.assert_clean();
    same_bytes(
        "/big.bin on the card",
        &card.read("/big.bin").unwrap(),
        &big,
    );
    same_bytes(
        "/after.bin on the card",
        &card.read("/after.bin").unwrap(),
        &data,
    );
    same_tree("/many on the card", &card.read_tree("many"), &many);
    // Uploads cut by a reset: what was kept holds only bytes that were
    // sent, in order (8 KB, then 8 KB more when the control went first).
    let up = card.read_tree("up");
    for (name, data) in &up {
        let n: u64 = name
            .strip_prefix("cut-")
            .and_then(|r| r.strip_suffix(".bin"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected /up/{name} on the card"));
        let data = data.as_ref().expect("a file");
        let chunk = load::content(8192, n);
        let sent = [chunk.clone(), chunk].concat();
        assert!(
            sent.starts_with(data),
            "/up/{name} on the card ({} bytes) is not a prefix of what was sent",
            data.len()
        );
    }
    eprintln!(
        "{}: {} cut uploads kept, {} to {} bytes",
        t.name,
        up.len(),
        up.values().flatten().map(Vec::len).min().unwrap_or(0),
        up.values().flatten().map(Vec::len).max().unwrap_or(0)
    );
}

// ---------------------------------------------------------------------------
// Slow clients
// ---------------------------------------------------------------------------

const IDLE_S: u64 = 10;
const DATA_S: u64 = 5;
/// How late a timeout may come: 2 s (polling, a loaded machine) and half
/// the timeout again (the QEMU board's millisecond clock runs slow: a 10 s
/// timeout there takes about 13 s of wall-clock time).
fn slack(want_s: u64) -> f64 {
    2.0 + want_s as f64 * 0.5
}

/// When something happened, from a common start.
fn at(t0: Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

#[track_caller]
fn within(what: &str, got: f64, from: f64, want_s: u64) {
    let lo = want_s as f64 - 0.5;
    let hi = want_s as f64 + slack(want_s);
    let d = got - from;
    assert!(
        d >= lo && d <= hi,
        "{what}: after {d:.1} s, expected {want_s} s (up to {hi:.1} s)"
    );
}

fn slow_clients(t: Target) {
    let qemu = is_qemu(&t);
    let card = Card::new();
    let big = load::content(512 * 1024, 9);
    card.put("big.bin", &big);
    let b = Board::start_with(
        t,
        &card,
        StartOptions {
            idle_timeout: Some(IDLE_S),
            data_timeout: Some(DATA_S),
            ..Default::default()
        },
    );
    let t0 = Instant::now();
    // A client that stops reading mid-RETR: a small receive window, and
    // nothing read after the 150.
    let stall = spawn_in(&b, move || -> load::Result<(f64, f64, f64, f64)> {
        let mut f = Ftp::login(addr(), USER, PASS, Duration::from_secs(IDLE_S + 30))?;
        let r = f.expect("EPSV", 229)?;
        let port = harness::client::parse_epsv(r.text()).unwrap();
        let d = load::connect_small_window(
            SocketAddr::new(addr().ip(), port),
            2048,
            Duration::from_secs(10),
        )
        .map_err(|e| Error::Wrong(format!("data connection: {e}")))?;
        let sent = at(t0);
        f.start("RETR /big.bin")?;
        let r426 = f.read_reply("the stalled RETR")?;
        let got426 = at(t0);
        if r426.code != 426 {
            return Err(Error::Reply {
                doing: "the stalled RETR".into(),
                reply: r426,
            });
        }
        // The data connection was ended with it: what is queued drains,
        // then EOF or a reset.
        let mut d = d;
        d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = Vec::new();
        match d.read_to_end(&mut sink) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => {
                return Err(Error::Wrong(format!(
                    "data connection still open after 426: {e}"
                )));
            }
        }
        let data_closed = at(t0);
        if sink.len() >= big.len() {
            return Err(Error::Wrong(
                "the whole file came through a stalled client".into(),
            ));
        }
        let r421 = f.read_reply("after the stalled RETR")?;
        let got421 = at(t0);
        if r421.code != 421 {
            return Err(Error::Reply {
                doing: "idle after the stalled RETR".into(),
                reply: r421,
            });
        }
        match f.read_reply("after 421") {
            Err(Error::Closed { .. }) => {}
            Err(Error::Io { err, .. }) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => {
                return Err(Error::Wrong(format!(
                    "control connection not closed after 421: {other:?}"
                )));
            }
        }
        Ok((sent, got426, data_closed, got421))
    });
    // A client that types a command one byte a second.
    let trickle = spawn_in(&b, move || -> load::Result<(f64, f64, usize)> {
        let f = Ftp::login(addr(), USER, PASS, Duration::from_secs(IDLE_S + 30))?;
        let since = at(t0);
        let line = b"LIST /a/path/typed/one/byte/a/second/by/a/very/slow/client\r\n";
        let mut s = f.stream().try_clone().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(1000)))
            .unwrap();
        let mut sent = 0;
        let mut buf = [0u8; 512];
        let got = loop {
            if sent == line.len() {
                return Err(Error::Wrong("the whole slow line was sent".into()));
            }
            if s.write_all(&line[sent..sent + 1]).is_err() {
                break Vec::new();
            }
            sent += 1;
            match s.read(&mut buf) {
                Ok(n) => break buf[..n].to_vec(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(Error::Wrong(format!("slow client: {e}"))),
            }
        };
        let when = at(t0);
        let text = String::from_utf8_lossy(&got).into_owned();
        if !text.starts_with("421 ") {
            return Err(Error::Wrong(format!("slow client heard {text:?}")));
        }
        // And then the server closes.
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        match s.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => return Err(Error::Wrong(format!("slow client not closed: {e}"))),
        }
        drop(f);
        Ok((since, when, sent))
    });
    // A client that stops sending mid-STOR (its data connection stays
    // open): the upload ends with 426 at the data timeout, the server
    // closes the data connection, and the session goes on.
    let upload_stall = spawn_in(&b, move || -> load::Result<(f64, f64)> {
        let mut f = Ftp::login(addr(), USER, PASS, Duration::from_secs(IDLE_S + 30))?;
        let mut d = f.passive()?;
        f.start("STOR /stalled.bin")?;
        d.write_all(&load::content(8192, 3))
            .map_err(|e| Error::Wrong(format!("STOR: {e}")))?;
        let stalled = at(t0);
        let r = f.read_reply("the stalled STOR")?;
        let got = at(t0);
        if r.code != 426 && r.code != 451 {
            return Err(Error::Reply {
                doing: "the stalled STOR".into(),
                reply: r,
            });
        }
        d.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 64];
        match d.read(&mut b) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => {
                return Err(Error::Wrong(format!(
                    "data connection of the stalled STOR still open: {other:?}"
                )));
            }
        }
        f.expect("NOOP", 200)?;
        f.quit()?;
        Ok((stalled, got))
    });
    // Meanwhile another client works.
    let size = if qemu { 32 * 1024 } else { 1 << 20 };
    let worker = spawn_in(&b, move || -> load::Result<(f64, usize)> {
        std::thread::sleep(Duration::from_millis(500));
        let mut f = Ftp::login(addr(), USER, PASS, LIMIT)?;
        let rounds = 4;
        for i in 0..rounds {
            let data = load::content(size, 100 + i as u64);
            f.stor(&format!("/w{i}.bin"), &data)?;
            if f.retr(&format!("/w{i}.bin"))? != data {
                return Err(Error::Wrong(format!("worker round {i}: RETR differs")));
            }
        }
        f.quit()?;
        Ok((at(t0), rounds))
    });
    let (worked, rounds) = ok("the worker", worker.join().unwrap());
    let (sent, got426, data_closed, got421) = ok("the stalled RETR", stall.join().unwrap());
    let (since, got421b, bytes) = ok("the byte-a-second client", trickle.join().unwrap());
    let (stor_stalled, got426s) = ok("the stalled STOR", upload_stall.join().unwrap());
    eprintln!(
        "{}: stalled RETR at {sent:.1} s: 426 at {got426:.1} s, data connection ended by {data_closed:.1} s, 421 at {got421:.1} s; \
         byte-a-second client (logged in at {since:.1} s) sent {bytes} bytes, 421 at {got421b:.1} s; \
         stalled STOR at {stor_stalled:.1} s: 426 at {got426s:.1} s; \
         the worker's {rounds} rounds done at {worked:.1} s",
        t.name
    );
    within("426 for the stalled RETR", got426, sent, DATA_S);
    within("421 for the stalled client", got421, sent, IDLE_S);
    within("421 for the byte-a-second client", got421b, since, IDLE_S);
    within("426 for the stalled STOR", got426s, stor_stalled, DATA_S);
    assert!(
        worked < got426,
        "the worker finished at {worked:.1} s, after the stalled RETR timed out ({got426:.1} s)"
    );
    let s = ok("STAT at the end", in_ns(&b, stat_now));
    assert_eq!((s.sessions, s.open_files), (1, 0), "{s:?}");
    b.stop();
    card.assert_clean();
    // The stalled upload kept (if anything) a prefix of what was sent.
    let kept = card.read("/stalled.bin").unwrap_or_default();
    assert!(
        load::content(8192, 3).starts_with(&kept),
        "/stalled.bin on the card ({} bytes) is not a prefix of what was sent",
        kept.len()
    );
    eprintln!("{}: the stalled STOR kept {} bytes", t.name, kept.len());
    for i in 0..rounds {
        same_bytes(
            &format!("/w{i}.bin on the card"),
            &card.read(&format!("/w{i}.bin")).unwrap(),
            &load::content(size, 100 + i as u64),
        );
    }
}
