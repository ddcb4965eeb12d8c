//! Panics on purpose: `tests/tests/firmware_boot.rs` checks that QEMU then exits non-zero.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    firmware::device::run(|_| panic!("deliberate panic"))
}

#[cfg(not(target_os = "none"))]
fn main() {
    panic!("deliberate panic")
}
