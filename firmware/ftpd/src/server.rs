//! The poll loop (work in progress).
use crate::{Config, Instant, Net, Storage, DateTime};
use core::marker::PhantomData;

/// What one call of [`Server::poll`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Poll {
    /// Something happened; call again at once.
    pub progressed: bool,
    /// Nothing to do before this time unless the network delivers something.
    pub next_wake: Option<Instant>,
}

pub struct Server<'a, N: Net, S: Storage, const MAX: usize> {
    _p: PhantomData<(&'a mut [u8], N, S)>,
    _c: Config<'a>,
}

impl<'a, N: Net, S: Storage, const MAX: usize> Server<'a, N, S, MAX> {
    pub fn new(config: Config<'a>, _data_buf: &'a mut [u8]) -> Self {
        Server { _p: PhantomData, _c: config }
    }
    pub fn set_utc(&mut self, _now: Option<DateTime>) {}
    pub fn poll(&mut self, _now: Instant, _net: &mut N, _fs: &mut S) -> Poll {
        Poll { progressed: false, next_wake: None }
    }
    pub fn sessions(&self) -> usize { 0 }
}
