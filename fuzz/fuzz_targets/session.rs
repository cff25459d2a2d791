//! The session state machine under a client that does anything: bytes on
//! the control connection split at any point, pipelined commands, passive
//! connections from the right and a wrong address, data, FIN, RST, slow
//! readers, time passing. Input format: `ftpd_fuzz::scenario`; checks:
//! `ftpd_fuzz::driver`.
#![no_main]

use ftpd_fuzz::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: Scenario| {
    ftpd_fuzz::driver::run(&s);
});
