//! `harness fuzz` (issue 7): a network fuzzer against a running target.

use std::process::ExitCode;

use crate::target::Context;

/// `harness fuzz` options.
#[derive(clap::Args, Clone, Debug)]
pub struct FuzzArgs {
    /// The target to fuzz (host-dir, host-fat, sim, qemu, qemu-10).
    #[arg(long, short = 't', default_value = "sim")]
    pub target: String,
    /// How long to fuzz.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// Runs `harness fuzz`.
pub async fn main(ctx: &Context, args: FuzzArgs) -> anyhow::Result<ExitCode> {
    let _ = (ctx, args);
    anyhow::bail!("harness fuzz: being written (issue 7)")
}
