//! Prints a `session` input (a crash, a corpus file) as readable actions:
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example show_session -- FILE...
//! ```

use arbitrary::{Arbitrary, Unstructured};
use ftpd_fuzz::scenario::{Action, Scenario};

fn show(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

fn main() {
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path).expect("readable input");
        let s = Scenario::arbitrary_take_rest(Unstructured::new(&data)).expect("any bytes decode");
        println!("# {path}\nflags {}", s.flags);
        for a in &s.actions {
            match a {
                Action::Send { conn, bytes, poll } => println!(
                    "{} conn {conn}: {} ({} bytes)",
                    if *poll { "send" } else { "pipe" },
                    show(&bytes[..bytes.len().min(200)]),
                    bytes.len()
                ),
                Action::Data { which, bytes } => println!(
                    "data {which}: {} ({} bytes)",
                    show(&bytes[..bytes.len().min(200)]),
                    bytes.len()
                ),
                other => println!("{other:?}"),
            }
        }
    }
}
