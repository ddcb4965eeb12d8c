//! Faults on purpose: `tests/tests/firmware_boot.rs` checks that QEMU then exits non-zero.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    // An undefined instruction raises a UsageFault, escalated to HardFault (UsageFault is not
    // enabled).
    firmware::device::run(|_| cortex_m::asm::udf())
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hardfault: a device-only check (--target thumbv7em-none-eabihf)");
    std::process::exit(2);
}
