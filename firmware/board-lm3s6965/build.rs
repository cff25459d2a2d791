//! Link arguments for the firmware binary, so they apply however cargo is
//! invoked (also `--manifest-path` from another directory, where this crate's
//! `.cargo/config.toml` is not read).
fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv") {
        // cortex-m-rt's linker script; `memory.x` comes from the lm3s6965 crate
        // (FLASH 256K at 0, RAM 64K at 0x2000_0000).
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
        // The top 64 bytes of SRAM are kept out of the stack: boot parameters
        // written by QEMU's generic loader live there (see src/params.rs; 8
        // of its 16 words are used). Every byte below is the stack's.
        println!("cargo:rustc-link-arg-bins=--defsym=_stack_start=0x2000FFC0");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
