//! `sim`: the FTP server on the host. See `sim --help`.
//!
//! Two axes, each a `match` below: the network (host sockets today; the
//! firmware application on smoltcp over a TAP device is issue 4's
//! `--tap IFNAME`) and the storage (a host directory, or a FAT image
//! through `ftpd-fat`).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Parser;
use ftpd::{Config, Storage};
use ftpd_app::{NetConfig, Settings};
use signal_hook::consts::{SIGINT, SIGTERM};

use sim::cli::{Cli, NetworkMode, StorageMode};
use sim::{HostFs, HostNet, logger, serve};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logger::init(cli.log_level(), cli.log.as_deref()) {
        eprintln!(
            "sim: --log {}: {e}",
            cli.log.as_deref().unwrap_or("?".as_ref()).display()
        );
        return ExitCode::from(2);
    }
    let accounts = cli.accounts();
    let config = cli.config(&accounts);
    let result = match cli.storage() {
        StorageMode::Dir(dir) => match HostFs::new(&dir) {
            Ok(fs) => {
                log::info!("serving directory {}", fs.root().display());
                serve(&cli, fs, config)
            }
            Err(e) => Err(format!("--root {}: {e}", dir.display())),
        },
        StorageMode::Image(img) => match match cli.fail_writes {
            Some((after, count)) => {
                log::warn!(
                    "--fail-writes: block writes {after} to {} will fail",
                    after + count
                );
                ftpd_fat::host::mount_image_failing(&img, after, count)
            }
            None => ftpd_fat::host::mount_image(&img),
        } {
            Ok(fs) => {
                log::info!("serving FAT image {}", img.display());
                serve(&cli, fs, config)
            }
            Err(e) => Err(format!("--image {}: {e}", img.display())),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            log::error!("{msg}");
            ExitCode::from(2)
        }
    }
}

/// Serves `fs` on the network the command line chose.
fn serve<S: Storage>(cli: &Cli, fs: S, config: Config<'_>) -> Result<(), String> {
    match cli.network() {
        NetworkMode::Host(addr) => serve_host(cli, addr, fs, config),
        NetworkMode::Tap(ifname) => serve_tap(&ifname, fs, cli.diag, &config),
    }
}

/// The virtual board: the firmware application (`ftpd-app`, smoltcp) on a
/// TAP device, with the board's own configuration and socket budget. The
/// TAP device and its host-side address must exist in this process's network
/// namespace (the harness prepares them).
fn serve_tap<S: Storage>(
    ifname: &str,
    fs: S,
    diag: bool,
    config: &Config<'_>,
) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&stop)))
            .map_err(|e| format!("signals: {e}"))?;
    }
    let mut settings = Settings::new(NetConfig::TEST_NET);
    settings.diag = diag;
    // --idle-timeout and --data-timeout (the rest of the engine's
    // configuration is the board's own).
    settings.idle_timeout_ms = config.idle_timeout_ms;
    settings.data_timeout_ms = config.data_timeout_ms;
    let ip = settings
        .net
        .ipv4
        .map(|(ip, _)| ip)
        .ok_or("the board has no IPv4 address")?;
    let mut out = io::stdout().lock();
    writeln!(out, "listening on ftp://{ip}:{}", settings.control_port)
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    ftpd_app::host::run_tap(ifname, &settings, fs, &stop, &mut |line| {
        log::info!("{line}")
    })
    .map_err(|e| format!("--tap {ifname}: {e}"))?;
    log::info!("stopped");
    Ok(())
}

/// Host sockets: bind, announce, serve until SIGINT/SIGTERM.
fn serve_host<S: Storage>(
    cli: &Cli,
    addr: SocketAddr,
    mut fs: S,
    config: Config<'_>,
) -> Result<(), String> {
    let mut net = HostNet::bind(addr).map_err(|e| format!("--listen {addr}: {e}"))?;
    if cli.diag {
        let bound = net.control_addr();
        // From the port asked for: `--listen IP:0` gets free ports for the
        // services too, never the two after a random one (which may be taken).
        let ports = cli.diag_ports(addr.port());
        let d = sim::diag::spawn(bound.ip(), ports)
            .map_err(|e| format!("--diag on {} ports {ports:?}: {e}", bound.ip()))?;
        log::info!("diag: discard {} chargen {}", d.discard, d.chargen);
    }
    let stop = install_stop_signals(&net).map_err(|e| format!("signals: {e}"))?;
    describe(&config);
    // Exactly one such line, on stdout, flushed: scripts wait for it.
    let mut out = io::stdout().lock();
    writeln!(out, "listening on ftp://{}", net.control_addr())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(out);
    serve::run(&mut net, &mut fs, config, &stop);
    log::info!("stopped");
    Ok(())
}

/// SIGINT and SIGTERM set the returned flag and wake the loop; a second one
/// while stopping exits at once (status 1).
fn install_stop_signals(net: &HostNet) -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))?;
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
        signal_hook::low_level::pipe::register(sig, net.waker()?)?;
    }
    Ok(stop)
}

fn describe(config: &Config<'_>) {
    for a in config.accounts {
        log::info!(
            "account {} ({}) at {}",
            a.user,
            if a.writable {
                "read-write"
            } else {
                "read-only"
            },
            a.root
        );
    }
    match config.anonymous_root {
        Some(root) => log::info!("anonymous logins allowed, read-only, at {root}"),
        None => log::info!("anonymous logins refused"),
    }
    log::info!(
        "up to {} sessions; passive ports {}-{}{}",
        config.max_sessions,
        config.pasv_ports.0,
        config.pasv_ports.1,
        config
            .pasv_address
            .map(|a| format!(", advertised as {a}"))
            .unwrap_or_default()
    );
}
