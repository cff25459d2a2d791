//! The bench's outputs: the table on stdout, and CSV, Markdown and an SVG
//! bar chart under `target/bench/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Figure, Report, TargetResult, fit, size_label};

/// The machine and conditions of a run.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub load_before: String,
    pub load_after: String,
    pub kernel: String,
    pub qemu: Vec<String>,
    pub vsftpd: String,
    /// The `sim` binary measured (host targets, the virtual board).
    pub sim: String,
}

/// `/proc/loadavg`'s first three numbers.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn command_line(program: &str, args: &[&str]) -> Option<String> {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

impl Machine {
    pub fn now() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "?".into());
        let qemu = [crate::board::Which::System, crate::board::Which::Extra]
            .into_iter()
            .filter_map(|w| crate::board::find_qemu(w).ok())
            .map(|q| format!("{} ({})", q.version, q.path.display()))
            .collect();
        Machine {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_default(),
            cpu,
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_before: loadavg(),
            load_after: String::new(),
            kernel: command_line("uname", &["-r"]).unwrap_or_default(),
            qemu,
            vsftpd: super::peer::version(),
            sim: String::new(),
        }
    }
}

fn cell(f: &Figure) -> String {
    match f {
        Ok(v) if *v >= 100.0 => format!("{v:.0}"),
        Ok(v) if *v >= 10.0 => format!("{v:.1}"),
        Ok(v) => format!("{v:.2}"),
        Err(_) => "n/a".into(),
    }
}

fn ratio(a: &Figure, b: &Figure) -> String {
    match (a, b) {
        (Ok(a), Ok(b)) if *b > 0.0 => format!("{:.0}%", a / b * 100.0),
        _ => "n/a".into(),
    }
}

const HEAD: [&str; 15] = [
    "target",
    "size",
    "RETR",
    "STOR",
    "rawOUT",
    "rawIN",
    "RETR/raw",
    "STOR/raw",
    "peerRETR",
    "peerSTOR",
    "RETR/peer",
    "STOR/peer",
    "diskRD",
    "diskWR",
    "",
];

fn rows_of(r: &TargetResult) -> Vec<Vec<String>> {
    r.rows
        .iter()
        .map(|x| {
            vec![
                r.target.to_string(),
                size_label(x.size),
                cell(&x.retr),
                cell(&x.stor),
                cell(&x.raw_retr),
                cell(&x.raw_stor),
                ratio(&x.retr, &x.raw_retr),
                ratio(&x.stor, &x.raw_stor),
                cell(&x.peer_retr),
                cell(&x.peer_stor),
                ratio(&x.retr, &x.peer_retr),
                ratio(&x.stor, &x.peer_stor),
                cell(&x.disk_read),
                cell(&x.disk_write),
            ]
        })
        .collect()
}

/// Why figures are missing, once per distinct reason.
fn na_notes(r: &TargetResult) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |what: &str, f: &Figure| {
        if let Err(e) = f {
            let why = e.lines().next().unwrap_or(e);
            // Already said where the figure comes from.
            let said = [&r.peer_where, &r.raw_where, &r.disk_where]
                .iter()
                .any(|w| w.starts_with("n/a") && w.contains(why));
            let l = format!("{what}: n/a ({why})");
            if !said && !out.contains(&l) {
                out.push(l);
            }
        }
    };
    for x in &r.rows {
        add("FTP RETR", &x.retr);
        add("FTP STOR", &x.stor);
        add("raw TCP", &x.raw_retr);
        add("raw TCP", &x.raw_stor);
        add("peer", &x.peer_retr);
        add("peer", &x.peer_stor);
        add("storage", &x.disk_read);
        add("storage", &x.disk_write);
    }
    out
}

/// How listing cost grows: a line fit over the directory sizes.
pub fn growth(r: &TargetResult, list: bool) -> String {
    let pts: Vec<(f64, f64)> = r
        .listings
        .iter()
        .filter_map(|l| {
            let f = if list { &l.list_ms } else { &l.mlsd_ms };
            f.as_ref().ok().map(|ms| (l.entries as f64, *ms))
        })
        .collect();
    match fit(&pts) {
        Some((a, b)) => {
            let (lo, hi) = (pts.first().unwrap(), pts.last().unwrap());
            let ratio = hi.1 / lo.1.max(1e-9);
            // t ~ n^k between the smallest and the largest directory.
            let k = ratio.ln() / (hi.0 / lo.0).ln();
            let shape = if k < 0.8 {
                "sub-linear: fixed costs dominate"
            } else if k <= 1.2 {
                "about linear"
            } else {
                "super-linear: the per-entry cost grows with the directory"
            };
            format!(
                "as n^{k:.2} ({shape}): {}x the entries took {ratio:.1}x the time; line fit {:.1} us/entry + {:.2} ms",
                (hi.0 / lo.0).round(),
                b * 1e3,
                a,
            )
        }
        None => "not enough points for a fit".into(),
    }
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut s = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < 2 {
                    format!("{c:<w$}", w = width[i])
                } else {
                    format!("{c:>w$}", w = width[i])
                }
            })
            .collect();
        let _ = writeln!(s, "{}", line.join("  ").trim_end());
    }
    s
}

/// The table on stdout.
pub fn table(rep: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nThroughput in MB/s (10^6 bytes/s), TYPE I, passive, median of {} run(s); \
         FTP timed from 150 to 226.\nraw = the target's discard (IN) / chargen (OUT) \
         services; peer = vsftpd on the same path; disk = sequential block-device read/write.\n",
        rep.plan.repeat
    );
    let mut rows = vec![HEAD[..14].iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for r in &rep.results {
        rows.extend(rows_of(r));
    }
    s.push_str(&align(&rows));
    for r in &rep.results {
        let _ = writeln!(s, "\n{} ({})", r.target, r.describe);
        let _ = writeln!(s, "  peer:    {}", r.peer_where);
        let _ = writeln!(s, "  raw TCP: {}", r.raw_where);
        let _ = writeln!(s, "  storage: {}", r.disk_where);
        for n in na_notes(r) {
            let _ = writeln!(s, "  {n}");
        }
        if !r.concurrency.is_empty() {
            let base = r.concurrency.first();
            let mut line = format!(
                "  concurrent {} transfers, aggregate MB/s:",
                size_label(r.concurrency_size)
            );
            for c in &r.concurrency {
                let _ = write!(
                    line,
                    " {}x RETR {} ({}) STOR {} ({});",
                    c.n,
                    cell(&c.retr),
                    base.map_or("".into(), |b| rel(&c.retr, &b.retr)),
                    cell(&c.stor),
                    base.map_or("".into(), |b| rel(&c.stor, &b.stor)),
                );
            }
            let _ = writeln!(s, "{}", line.trim_end_matches(';'));
        }
        if !r.listings.is_empty() {
            let mut line = "  listing ms:".to_string();
            for l in &r.listings {
                let _ = write!(
                    line,
                    " {} entries LIST {} MLSD {};",
                    l.entries,
                    cell(&l.list_ms),
                    cell(&l.mlsd_ms)
                );
            }
            let _ = writeln!(s, "{}", line.trim_end_matches(';'));
            let _ = writeln!(s, "  LIST grows {}", growth(r, true));
            let _ = writeln!(s, "  MLSD grows {}", growth(r, false));
        }
        for f in &r.failures {
            let _ = writeln!(s, "  FAILED: {f}");
        }
    }
    let floors = rep.floors();
    if !floors.is_empty() {
        let _ = writeln!(s, "\nFloors (issue 6):");
        for f in &floors {
            let _ = writeln!(s, "  {}", f.verdict());
        }
    }
    for k in &rep.skipped {
        let _ = writeln!(s, "\n{}: cannot run here: {}", k.target, k.reason);
    }
    s
}

fn rel(a: &Figure, b: &Figure) -> String {
    match (a, b) {
        (Ok(a), Ok(b)) if *b > 0.0 => format!("{:.2}x", a / b),
        _ => "n/a".into(),
    }
}

/// Write `bench.csv`, `bench.md`, `bench.svg` into `dir`; their paths.
pub fn write_all(rep: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let files = [
        (dir.join("bench.csv"), csv(rep)),
        (dir.join("bench.md"), markdown(rep)),
        (dir.join("bench.svg"), svg(rep)),
    ];
    let mut out = Vec::new();
    for (p, text) in files {
        std::fs::write(&p, &text).map_err(|e| anyhow::anyhow!("writing {}: {e}", p.display()))?;
        // CI's quick run checks that every file appears, whole.
        let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        if len != text.len() as u64 || len == 0 {
            anyhow::bail!(
                "{} was not written whole ({len} of {} bytes)",
                p.display(),
                text.len()
            );
        }
        out.push(p);
    }
    Ok(out)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One row per figure: target,section,size_bytes,sessions_or_entries,metric,value,unit,note.
pub fn csv(rep: &Report) -> String {
    let mut s = String::from("target,section,size_bytes,count,metric,value,unit,note\n");
    let mut put = |t: &str, sec: &str, size: u64, n: usize, m: &str, f: &Figure, unit: &str| {
        let (v, note) = match f {
            Ok(v) => (format!("{v:.4}"), String::new()),
            Err(e) => (
                String::new(),
                format!("n/a ({})", e.lines().next().unwrap_or(e)),
            ),
        };
        let _ = writeln!(
            s,
            "{t},{sec},{size},{n},{m},{v},{unit},{}",
            csv_field(&note)
        );
    };
    for r in &rep.results {
        for x in &r.rows {
            for (m, f) in [
                ("ftp_retr", &x.retr),
                ("ftp_stor", &x.stor),
                ("raw_tcp_out", &x.raw_retr),
                ("raw_tcp_in", &x.raw_stor),
                ("peer_retr", &x.peer_retr),
                ("peer_stor", &x.peer_stor),
                ("disk_read", &x.disk_read),
                ("disk_write", &x.disk_write),
            ] {
                put(r.target, "throughput", x.size, 1, m, f, "MB/s");
            }
        }
        for c in &r.concurrency {
            put(
                r.target,
                "concurrency",
                r.concurrency_size,
                c.n,
                "ftp_retr_aggregate",
                &c.retr,
                "MB/s",
            );
            put(
                r.target,
                "concurrency",
                r.concurrency_size,
                c.n,
                "ftp_stor_aggregate",
                &c.stor,
                "MB/s",
            );
        }
        for l in &r.listings {
            put(r.target, "listing", 0, l.entries, "list", &l.list_ms, "ms");
            put(r.target, "listing", 0, l.entries, "mlsd", &l.mlsd_ms, "ms");
        }
    }
    s
}

/// The Markdown report: conditions, the table, scaling, floors.
pub fn markdown(rep: &Report) -> String {
    let m = &rep.machine;
    let mut s = String::from("# harness bench\n\n");
    let _ = writeln!(s, "- date: {}", m.date);
    let _ = writeln!(s, "- CPU: {} ({} cores available)", m.cpu, m.cores);
    let _ = writeln!(
        s,
        "- load average before / after: {} / {}",
        m.load_before, m.load_after
    );
    let _ = writeln!(s, "- kernel: {}", m.kernel);
    for q in &m.qemu {
        let _ = writeln!(s, "- QEMU: {q}");
    }
    let _ = writeln!(s, "- peer: {}", m.vsftpd);
    let _ = writeln!(s, "- sim: {}", m.sim);
    let _ = writeln!(
        s,
        "- plan: sizes {}, median of {} run(s), concurrency {:?}, listings {:?}{}",
        rep.plan
            .sizes
            .iter()
            .map(|&n| size_label(n))
            .collect::<Vec<_>>()
            .join(", "),
        rep.plan.repeat,
        rep.plan.concurrency,
        rep.plan.listings,
        if rep.plan.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        s,
        "\nMB/s = 10^6 bytes per second. FTP: the harness's own client, TYPE I, PASV, \
         timed from the 150 to the 226 reply. raw OUT/IN: the target's chargen/discard \
         services (the RETR/STOR ceiling of the same path). peer: vsftpd serving the same \
         files on the same path. disk: sequential read/write of the target's image through \
         its block cache.\n"
    );
    let mut head: Vec<String> = HEAD[..14].iter().map(|h| h.to_string()).collect();
    head[4] = "raw OUT".into();
    head[5] = "raw IN".into();
    let _ = writeln!(s, "| {} |", head.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
    for r in &rep.results {
        for row in rows_of(r) {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    for r in &rep.results {
        let _ = writeln!(s, "\n## {}\n\n{}\n", r.target, r.describe);
        let _ = writeln!(s, "- peer: {}", r.peer_where);
        let _ = writeln!(s, "- raw TCP: {}", r.raw_where);
        let _ = writeln!(s, "- storage: {}", r.disk_where);
        for n in na_notes(r) {
            let _ = writeln!(s, "- {n}");
        }
        if !r.concurrency.is_empty() {
            let _ = writeln!(
                s,
                "\n| sessions at once ({} each) | RETR MB/s total | STOR MB/s total |\n|---|---|---|",
                size_label(r.concurrency_size)
            );
            for c in &r.concurrency {
                let _ = writeln!(s, "| {} | {} | {} |", c.n, cell(&c.retr), cell(&c.stor));
            }
        }
        if !r.listings.is_empty() {
            let _ = writeln!(s, "\n| entries | LIST ms | MLSD ms |\n|---|---|---|");
            for l in &r.listings {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} |",
                    l.entries,
                    cell(&l.list_ms),
                    cell(&l.mlsd_ms)
                );
            }
            let _ = writeln!(
                s,
                "\nLIST grows {}.  \nMLSD grows {}.",
                growth(r, true),
                growth(r, false)
            );
        }
        for f in &r.failures {
            let _ = writeln!(s, "\n**FAILED**: `{}`", f.replace('\n', " / "));
        }
    }
    let floors = rep.floors();
    if !floors.is_empty() {
        let _ = writeln!(s, "\n## Floors\n");
        for f in &floors {
            let _ = writeln!(s, "- {}", f.verdict());
        }
    }
    if !rep.skipped.is_empty() {
        let _ = writeln!(s, "\n## Not run here\n");
        for k in &rep.skipped {
            let _ = writeln!(s, "- {}: {}", k.target, k.reason);
        }
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A horizontal bar chart, log scale (the figures span QEMU's hundreds of
/// KB/s to loopback's GB/s): one group per target and size, bars for FTP,
/// raw TCP and the peer, RETR and STOR.
pub fn svg(rep: &Report) -> String {
    let series: [(&str, &str); 6] = [
        ("FTP RETR", "#1f77b4"),
        ("raw OUT", "#aec7e8"),
        ("peer RETR", "#9edae5"),
        ("FTP STOR", "#d62728"),
        ("raw IN", "#ff9896"),
        ("peer STOR", "#f7b6d2"),
    ];
    let mut groups: Vec<(String, [Option<f64>; 6])> = Vec::new();
    for r in &rep.results {
        for x in &r.rows {
            let v = |f: &Figure| f.as_ref().ok().copied().filter(|v| *v > 0.0);
            groups.push((
                format!("{} {}", r.target, size_label(x.size)),
                [
                    v(&x.retr),
                    v(&x.raw_retr),
                    v(&x.peer_retr),
                    v(&x.stor),
                    v(&x.raw_stor),
                    v(&x.peer_stor),
                ],
            ));
        }
    }
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.1.iter().flatten().copied())
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).min(1.0);
    let hi = all.iter().copied().fold(0.0, f64::max).max(10.0);
    let (lo_e, hi_e) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let (left, width, bar, gap) = (130.0, 560.0, 9.0, 10.0);
    let top = 50.0;
    let height = top + groups.len() as f64 * (bar * 6.0 + gap) + 40.0;
    let x = |v: f64| left + (v.log10() - lo_e as f64) / f64::from(hi_e - lo_e) * width;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">harness bench: MB/s (log scale), {}</text>\n",
        left + width + 60.0,
        esc(&rep.machine.date)
    );
    for (i, (name, color)) in series.iter().enumerate() {
        let lx = 10.0 + i as f64 * 110.0;
        let _ = writeln!(
            s,
            "<rect x=\"{lx}\" y=\"28\" width=\"10\" height=\"10\" fill=\"{color}\"/><text x=\"{}\" y=\"37\">{name}</text>",
            lx + 14.0
        );
    }
    for e in lo_e..=hi_e {
        let gx = x(10f64.powi(e));
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{top}\" x2=\"{gx:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            height - 30.0,
            height - 16.0,
            10f64.powi(e)
        );
    }
    let mut y = top;
    for (label, vals) in &groups {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + bar * 3.0 + 4.0,
            esc(label)
        );
        for (i, v) in vals.iter().enumerate() {
            let by = y + i as f64 * bar;
            match v {
                Some(v) => {
                    let w = (x(*v) - left).max(1.0);
                    let _ = writeln!(
                        s,
                        "<rect x=\"{left}\" y=\"{by:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{} {}: {v:.2} MB/s</title></rect>",
                        bar - 1.0,
                        series[i].1,
                        esc(label),
                        series[i].0
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "<text x=\"{}\" y=\"{:.1}\" font-size=\"8\" fill=\"#888\">{} n/a</text>",
                        left + 2.0,
                        by + bar - 2.0,
                        series[i].0
                    );
                }
            }
        }
        y += bar * 6.0 + gap;
    }
    s.push_str("</svg>\n");
    s
}
