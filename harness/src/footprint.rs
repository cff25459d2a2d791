//! `harness bench --footprint` (issue 6): the engine's flash at opt-level z
//! and s, the QEMU and STM32F4-Discovery firmware's flash and RAM, the RAM
//! one session costs, the stack high-water mark measured on QEMU.

use std::process::ExitCode;

use crate::target::Context;

/// Prints the footprint report.
pub async fn main(ctx: &Context) -> anyhow::Result<ExitCode> {
    let _ = ctx;
    anyhow::bail!("harness bench --footprint: being written (issue 6)")
}
