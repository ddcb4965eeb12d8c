//! QEMU's `mps2-an386`: a Cortex-M4F (ARMv7E-M: FPU and DSP instructions), UART0 a CMSDK UART
//! at `0x4000_4000` (`uart`), 16 MiB of PSRAM where QEMU loads data blobs.

pub mod uart;

use digits_core::blob::{BLOB_ADDRESS, Blob};
use digits_core::update::RamFlash;

pub use uart::{BAUD, Uart};

/// `serve`'s model slots: the mps2-an386's code memory is RAM, so the flash rules (erase to
/// `0xFF`, program clears bits) are kept in software ([`RamFlash`]), over the STM32F4's
/// sectors that `memory/mps2-an386.x` stands for.
pub type SlotFlash = RamFlash<'static>;

/// The slot area at `_slots_start` (memory/mps2-an386.x).
///
/// # Safety
///
/// Once per program: the area is this value's alone.
pub unsafe fn slot_flash() -> SlotFlash {
    unsafe extern "C" {
        static _slots_start: u8;
    }
    let start = (&raw const _slots_start) as usize;
    // SAFETY: the mps2-an386 maps 4 MiB of RAM at 0x0, and the slot area, AREA_LEN bytes
    // from `_slots_start`, lies in the first MiB; no Rust object but serve's factory bytes
    // (`.slot_a`, never accessed from Rust) lives there, and the caller hands it out once.
    let bytes = unsafe {
        core::slice::from_raw_parts_mut(
            core::ptr::with_exposed_provenance_mut::<u8>(start),
            crate::slots::AREA_LEN as usize,
        )
    };
    RamFlash::new(bytes, crate::slots::GEOMETRY)
}

/// The board's name, as `Info` reports it.
pub const NAME: &str = "mps2-an386";

/// Where QEMU's mps2-an386 has its 16 MiB of PSRAM (where the host loads the blob).
pub const PSRAM_START: usize = BLOB_ADDRESS;
/// Bytes of PSRAM.
pub const PSRAM_LEN: usize = 16 << 20;

/// The PSRAM, where the host has QEMU load data before the CPU starts:
/// `-device loader,file=BLOB,addr=0x21000000,force-raw=on`. (QEMU's board only:
/// `memory/mps2-an386.x` stands for a part without it.)
pub fn psram() -> &'static [u8] {
    // SAFETY: mps2-an386 maps 16 MiB of RAM at PSRAM_START. memory/mps2-an386.x gives the
    // linker nothing there, so no Rust object lives in it and this program never writes it: a
    // shared slice of it stays valid and unchanged for the whole run.
    unsafe { core::slice::from_raw_parts(PSRAM_START as *const u8, PSRAM_LEN) }
}

/// The data blob the host had QEMU load into the PSRAM.
pub fn eval_source() -> Result<Blob<'static>, &'static str> {
    crate::eval::loaded_blob(psram())
}

/// The data blob `serve` evaluates on, if the host had one loaded into the PSRAM.
pub fn serve_data() -> Option<Blob<'static>> {
    crate::eval::loaded_blob(psram()).ok()
}
