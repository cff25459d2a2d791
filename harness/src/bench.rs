//! `harness bench` and `cargo bench -p harness` (issue 6): RETR/STOR
//! throughput per target and size, next to a peer (vsftpd) and the ceilings
//! of the same path (raw TCP through the diagnostic discard/chargen service,
//! raw block-device reads and writes); scaling with concurrent transfers and
//! listing sizes; `--footprint` prints the flash/RAM report
//! ([`crate::footprint`]).

use std::process::ExitCode;

use crate::target::Context;

/// `harness bench` options.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BenchArgs {
    /// Print the flash and RAM footprint report instead of throughput.
    #[arg(long)]
    pub footprint: bool,
}

/// Runs `harness bench`.
pub async fn main(ctx: &Context, args: BenchArgs) -> anyhow::Result<ExitCode> {
    if args.footprint {
        return crate::footprint::main(ctx).await;
    }
    let _ = ctx;
    anyhow::bail!("harness bench: throughput measurement is being written (issue 6)")
}
