//! A byte-level simulation of an SD card in SPI mode, in three flavours, for
//! the driver's tests:
//!
//! - `Qemu72`: QEMU 7.2's `ssi-sd` + `sd.c` as observed (research notes,
//!   section 3): R1 0x01 to CMD8/CMD58 even after initialisation, one clocked
//!   byte swallowed after every response, CMD0 to an initialised card answers
//!   0x00 once, no busy periods, no card = no answer at all.
//! - `Qemu10`: the same plus CMD9/CMD10/CMD13 answered with R1 0x04, and no
//!   card = R1 0x04 to everything.
//! - `Real`: a card as the SD spec describes it: R1 0x00 once ready, ACMD41
//!   needs a few rounds, busy after writes and CMD12, MISO 0xFF when
//!   deselected.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::rc::Rc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Qemu72 = 1,
    Qemu10 = 2,
    Real = 3,
}

impl Flavor {
    fn qemu(self) -> bool {
        self != Flavor::Real
    }
}

struct Write {
    block: u64,
    multi: bool,
    receiving: bool,
    buf: Vec<u8>,
}

struct State {
    flavor: Flavor,
    size: Option<u64>,
    data: HashMap<u64, [u8; 512]>,
    selected: bool,
    out: VecDeque<u8>,
    swallow_next: bool,
    cmd: Vec<u8>,
    ready: bool,
    app: bool,
    acmd41_calls: u32,
    reading: Option<u64>,
    writing: Option<Write>,
    /// QEMU 10.0.2: the illegal-command bit shows again in the next R1.
    late_illegal: bool,
}

/// The card; clones share it.
#[derive(Clone)]
pub struct SimCard(Rc<RefCell<State>>);

pub struct SimSpi(SimCard);
pub struct SimCs(SimCard);
pub struct NoDelay;

impl SimCard {
    /// `size` in bytes; `None` = empty slot.
    pub fn new(flavor: Flavor, size: Option<u64>) -> Self {
        SimCard(Rc::new(RefCell::new(State {
            flavor,
            size,
            data: HashMap::new(),
            selected: false,
            out: VecDeque::new(),
            swallow_next: false,
            cmd: Vec::new(),
            ready: false,
            app: false,
            acmd41_calls: 0,
            reading: None,
            writing: None,
            late_illegal: false,
        })))
    }

    /// A card holding a copy of a disk image.
    pub fn from_image(flavor: Flavor, image: &[u8]) -> Self {
        let card = SimCard::new(flavor, Some(image.len() as u64));
        {
            let mut s = card.0.borrow_mut();
            for (i, chunk) in image.chunks(512).enumerate() {
                if chunk.iter().any(|&b| b != 0) {
                    let mut blk = [0u8; 512];
                    blk.copy_from_slice(chunk);
                    s.data.insert(i as u64, blk);
                }
            }
        }
        card
    }

    /// The card's contents as a disk image.
    pub fn image(&self) -> Vec<u8> {
        let s = self.0.borrow();
        let mut v = vec![0u8; s.size.unwrap_or(0) as usize];
        for (&i, b) in &s.data {
            v[i as usize * 512..][..512].copy_from_slice(b);
        }
        v
    }

    pub fn bus(&self) -> (SimSpi, SimCs) {
        (SimSpi(self.clone()), SimCs(self.clone()))
    }

    pub fn block(&self, idx: u64) -> [u8; 512] {
        self.0.borrow().data.get(&idx).copied().unwrap_or([0; 512])
    }

    /// Executes a command on a ready card and returns its R1.
    pub fn raw_command(&self, idx: u8) -> u8 {
        let mut s = self.0.borrow_mut();
        s.ready = true;
        s.out.clear();
        s.execute(idx, 0);
        s.out[1]
    }
}

fn sdhc(size: u64) -> bool {
    size > 2 << 30
}

pub fn csd_v1(size: u64) -> [u8; 16] {
    let (mut bl_len, mut c_size) = (9u32, size / (1 << 18) - 1);
    if c_size > 4095 {
        bl_len = 10;
        c_size = size / (1 << 19) - 1;
    }
    let mult = 7u32;
    let mut c = [0u8; 16];
    c[5] = bl_len as u8;
    c[6] = (c_size >> 10) as u8 & 0x03;
    c[7] = (c_size >> 2) as u8;
    c[8] = ((c_size & 3) << 6) as u8;
    c[9] = (mult >> 1) as u8 & 0x03;
    c[10] = ((mult & 1) << 7) as u8;
    c
}

pub fn csd_v2(size: u64) -> [u8; 16] {
    let c_size = size / (512 * 1024) - 1;
    let mut c = [0u8; 16];
    c[0] = 0x40;
    c[5] = 9;
    c[7] = (c_size >> 16) as u8 & 0x3F;
    c[8] = (c_size >> 8) as u8;
    c[9] = c_size as u8;
    c
}

impl State {
    fn r1(&self) -> u8 {
        if self.ready { 0x00 } else { 0x01 }
    }

    fn block_of(&self, arg: u32) -> Option<u64> {
        let size = self.size?;
        let b = if sdhc(size) {
            arg as u64
        } else {
            arg as u64 / 512
        };
        (b < size / 512).then_some(b)
    }

    fn queue_block(&mut self, b: u64) {
        let data = self.data.get(&b).copied().unwrap_or([0; 512]);
        self.out.push_back(0xFF);
        self.out.push_back(0xFE);
        self.out.extend(data);
        self.out.extend([0x12, 0x34]);
    }

    fn execute(&mut self, idx: u8, arg: u32) {
        let flavor = self.flavor;
        let Some(size) = self.size else {
            if flavor == Flavor::Qemu10 {
                self.out.extend([0xFF, 0x04]);
            }
            return;
        };
        let app = std::mem::take(&mut self.app);
        let mut resp: Vec<u8> = Vec::new();
        let out_of_range = if flavor.qemu() { 0x20 } else { 0x40 };
        match (app, idx) {
            (_, 0) => {
                resp.push(if flavor.qemu() { self.r1() } else { 0x01 });
                self.ready = false;
                self.acmd41_calls = 0;
                self.reading = None;
                self.writing = None;
            }
            (_, 8) => {
                resp.push(if flavor.qemu() { 0x01 } else { self.r1() });
                resp.extend([0x00, 0x00, (arg >> 8) as u8 & 0x0F, arg as u8]);
            }
            (false, 55) => {
                resp.push(self.r1());
                self.app = true;
            }
            (true, 41) => {
                self.acmd41_calls += 1;
                resp.push(self.r1());
                let needed = if flavor.qemu() { 1 } else { 3 };
                if self.acmd41_calls >= needed {
                    self.ready = true;
                }
            }
            (true, 23) => resp.push(self.r1()),
            (_, 58) => {
                resp.push(if flavor.qemu() { 0x01 } else { self.r1() });
                resp.extend([if sdhc(size) { 0xC0 } else { 0x80 }, 0xFF, 0xFF, 0x00]);
            }
            (_, 9) | (_, 10) if flavor == Flavor::Qemu10 => resp.push(0x04),
            (_, 9) => {
                resp.push(self.r1());
                resp.extend([0xFF, 0xFE]);
                resp.extend(if sdhc(size) {
                    csd_v2(size)
                } else {
                    csd_v1(size)
                });
                resp.extend([0xAB, 0xCD]);
            }
            (_, 13) if flavor == Flavor::Qemu10 => resp.push(0x04),
            (_, 13) => resp.extend([self.r1(), 0x00]),
            (_, 16) => resp.push(self.r1()),
            (_, 12) => {
                resp.push(self.r1());
                if !flavor.qemu() {
                    resp.extend([0x00, 0x00]);
                }
                self.reading = None;
            }
            (_, 17) | (_, 18) if self.ready => match self.block_of(arg) {
                None => resp.push(out_of_range),
                Some(b) => {
                    self.push_response(vec![self.r1()]);
                    self.queue_block(b);
                    if idx == 18 {
                        self.reading = Some(b + 1);
                    }
                    return;
                }
            },
            (_, 24) | (_, 25) if self.ready => match self.block_of(arg) {
                None => resp.push(out_of_range),
                Some(b) => {
                    resp.push(self.r1());
                    self.writing = Some(Write {
                        block: b,
                        multi: idx == 25,
                        receiving: false,
                        buf: Vec::new(),
                    });
                }
            },
            _ => resp.push(0x04),
        }
        self.push_response(resp);
    }

    fn push_response(&mut self, mut resp: Vec<u8>) {
        if self.flavor == Flavor::Qemu10 {
            let illegal = resp[0] == 0x04;
            if self.late_illegal {
                resp[0] |= 0x04;
            }
            self.late_illegal = illegal;
        }
        self.out.push_back(0xFF); // Ncr
        self.out.extend(resp);
    }

    fn exchange(&mut self, mosi: u8) -> u8 {
        let qemu = self.flavor.qemu();
        if !self.selected {
            // QEMU: the OLED is selected and answers 0x00.
            return if qemu { 0x00 } else { 0xFF };
        }
        if let Some(w) = self.writing.as_mut()
            && w.receiving
        {
            w.buf.push(mosi);
            if w.buf.len() == 514 {
                let mut blk = [0u8; 512];
                blk.copy_from_slice(&w.buf[..512]);
                let size = self.size.unwrap_or(0);
                let in_range = w.block < size / 512;
                if in_range {
                    self.data.insert(w.block, blk);
                }
                w.block += 1;
                w.receiving = false;
                w.buf.clear();
                let multi = w.multi;
                if !multi {
                    self.writing = None;
                }
                self.out.push_back(if in_range { 0x05 } else { 0x0D });
                if !qemu {
                    self.out.extend([0x00, 0x00, 0x00]);
                }
            }
            return 0xFF;
        }
        if self.reading.is_some() && mosi != 0xFF && self.cmd.is_empty() {
            // A command (CMD12) in the middle of a multi-block read.
            self.out.clear();
            self.reading = None;
            self.swallow_next = false;
            self.cmd.push(mosi);
            return 0xFF;
        }
        if let Some(b) = self.out.pop_front() {
            if self.out.is_empty() {
                if let Some(next) = self.reading {
                    if next < self.size.unwrap_or(0) / 512 {
                        self.queue_block(next);
                        self.reading = Some(next + 1);
                    }
                } else if qemu {
                    self.swallow_next = true;
                }
            }
            return b;
        }
        if self.swallow_next {
            self.swallow_next = false;
            return 0xFF;
        }
        if !self.cmd.is_empty() {
            self.cmd.push(mosi);
            if self.cmd.len() == 6 {
                let c = std::mem::take(&mut self.cmd);
                let arg = u32::from_be_bytes([c[1], c[2], c[3], c[4]]);
                self.execute(c[0] & 0x3F, arg);
            }
            return 0xFF;
        }
        match mosi {
            0xFF => 0xFF,
            0xFE | 0xFC if self.writing.is_some() => {
                self.writing.as_mut().unwrap().receiving = true;
                0xFF
            }
            0xFD if self.writing.as_ref().is_some_and(|w| w.multi) => {
                self.writing = None;
                if !qemu {
                    self.out.extend([0xFF, 0x00, 0x00]);
                }
                0xFF
            }
            b => {
                if qemu || b & 0xC0 == 0x40 {
                    self.cmd.push(b);
                }
                0xFF
            }
        }
    }
}

impl embedded_hal::spi::ErrorType for SimSpi {
    type Error = Infallible;
}

impl embedded_hal::spi::SpiBus<u8> for SimSpi {
    fn read(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        let mut s = self.0.0.borrow_mut();
        for w in words {
            *w = s.exchange(0xFF);
        }
        Ok(())
    }
    fn write(&mut self, words: &[u8]) -> Result<(), Infallible> {
        let mut s = self.0.0.borrow_mut();
        for &w in words {
            s.exchange(w);
        }
        Ok(())
    }
    fn transfer(&mut self, read: &mut [u8], write: &[u8]) -> Result<(), Infallible> {
        let mut s = self.0.0.borrow_mut();
        for i in 0..read.len().max(write.len()) {
            let b = s.exchange(write.get(i).copied().unwrap_or(0xFF));
            if let Some(r) = read.get_mut(i) {
                *r = b;
            }
        }
        Ok(())
    }
    fn transfer_in_place(&mut self, words: &mut [u8]) -> Result<(), Infallible> {
        let mut s = self.0.0.borrow_mut();
        for w in words {
            *w = s.exchange(*w);
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl embedded_hal::digital::ErrorType for SimCs {
    type Error = Infallible;
}

impl embedded_hal::digital::OutputPin for SimCs {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0.0.borrow_mut().selected = true;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0.0.borrow_mut().selected = false;
        Ok(())
    }
}

thread_local! {
    static DELAYED_NS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

impl NoDelay {
    /// Nanoseconds of delay asked for on this thread since the last call.
    pub fn take_total_ns() -> u64 {
        DELAYED_NS.with(|c| c.replace(0))
    }
}

/// Returns at once but counts what was asked for, so tests can tell a driver
/// that waits where it should not.
impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, ns: u32) {
        DELAYED_NS.with(|c| c.set(c.get() + ns as u64));
    }
}
