//! defmt's global logger: log frames go to QEMU's stdout over semihosting, one host call per
//! frame, and the host decodes them with the ELF's defmt table (`host::device::logs::decode_logs`).
//!
//! Why not the `defmt-semihosting` crate: it makes one semihosting call, a trap to QEMU, per
//! encoded *byte*. A report line of 100 bytes is then 100 traps; here it is one. Frames longer
//! than the buffer are written in pieces, which the decoder does not notice.

use core::cell::UnsafeCell;
use cortex_m::register::primask;
use cortex_m_semihosting::hio::{self, HostStream};

use crate::flag::Flag;

#[defmt::global_logger]
struct Logger;

/// Bytes collected before a host call.
const BUFFER: usize = 256;

struct State {
    encoder: defmt::Encoder,
    sink: Sink,
    /// Whether interrupts were enabled when the frame began.
    interrupts_were_enabled: bool,
}

/// Encoded bytes on their way to the host.
struct Sink {
    out: Option<HostStream>,
    buf: [u8; BUFFER],
    len: usize,
}

impl Sink {
    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len == BUFFER {
                self.flush();
            }
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn flush(&mut self) {
        if self.out.is_none() {
            self.out = hio::hstdout().ok();
        }
        if let Some(out) = &mut self.out {
            // Nothing sensible to do if the host refuses: logging must not fail the program.
            out.write_all(&self.buf[..self.len]).ok();
        }
        self.len = 0;
    }
}

struct Shared {
    taken: Flag,
    state: UnsafeCell<State>,
}

// SAFETY: `state` is only touched between `acquire` and `release`, with interrupts disabled
// and `taken` set, so by one context at a time (single core).
unsafe impl Sync for Shared {}

static SHARED: Shared = Shared {
    taken: Flag::new(),
    state: UnsafeCell::new(State {
        encoder: defmt::Encoder::new(),
        sink: Sink {
            out: None,
            buf: [0; BUFFER],
            len: 0,
        },
        interrupts_were_enabled: false,
    }),
};

/// The state, for the context that holds the logger.
///
/// # Safety
/// Only between `acquire` and `release`.
unsafe fn state() -> &'static mut State {
    // SAFETY: see `Shared`; the caller holds the logger.
    unsafe { &mut *SHARED.state.get() }
}

// SAFETY: acquire/release bracket every write with interrupts off and a taken flag, so frames
// never interleave.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        let enabled = primask::read().is_active();
        cortex_m::interrupt::disable();
        if SHARED.taken.set() {
            // Logging from a fault that hit while logging: the stream is broken, and a panic
            // here would only recurse. Stop with a failure status.
            crate::device::exit(false);
        }
        // SAFETY: we hold the logger now.
        let state = unsafe { state() };
        state.interrupts_were_enabled = enabled;
        let State { encoder, sink, .. } = state;
        encoder.start_frame(|b| sink.push(b));
    }

    unsafe fn flush() {
        // SAFETY: defmt calls this while the logger is held.
        unsafe { state() }.sink.flush();
    }

    unsafe fn release() {
        // SAFETY: defmt calls this while the logger is held.
        let state = unsafe { state() };
        let State { encoder, sink, .. } = state;
        encoder.end_frame(|b| sink.push(b));
        sink.flush();
        let enable = state.interrupts_were_enabled;
        SHARED.taken.clear();
        if enable {
            // SAFETY: interrupts were enabled when this frame began.
            unsafe { cortex_m::interrupt::enable() };
        }
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: defmt calls this while the logger is held.
        let State { encoder, sink, .. } = unsafe { state() };
        encoder.write(bytes, |b| sink.push(b));
    }
}
