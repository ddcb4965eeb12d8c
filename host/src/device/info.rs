//! `digits device info`: what the device reports about itself.

use std::net::SocketAddr;

use anyhow::Result;
use digits_core::protocol::DeviceInfo;

use super::firmware::Firmware;
use super::logs::LogPrinter;
use super::session::Session;

/// Runs `digits device info`: the device's firmware, model, memory and counters.
pub fn run(firmware: &Firmware, connect: Option<SocketAddr>, logs: LogPrinter) -> Result<()> {
    let mut session = Session::open(firmware, connect, logs)?;
    let info = session.link.info()?;
    print_info(&info);
    let stats = session.link.stats()?;
    println!(
        "counters      {} requests, {} images classified, {} damaged frames, {} unknown requests",
        stats.requests, stats.classified, stats.bad_frames, stats.unknown_requests
    );
    session.close()
}

fn print_info(info: &DeviceInfo<'_>) {
    let m = &info.model;
    let a = m.architecture;
    println!(
        "firmware      {} (protocol {}) on {}",
        info.firmware, info.protocol, info.board
    );
    let accuracy = m
        .test_accuracy
        .map_or("not recorded".to_owned(), |a| format!("{:.2}%", 100.0 * a));
    println!(
        "model         {}-{}-{} {:?}, trained on {}, test accuracy {accuracy}, parameters \
         digest {:016x}",
        a.input, a.hidden, a.output, m.precision, m.dataset, m.params_fnv64
    );
    println!(
        "flash         {} B (.text + .rodata + .data)",
        info.flash_bytes
    );
    println!("static RAM    {} B (.data + .bss)", info.static_ram_bytes);
    println!(
        "stack         {} B peak of {} B",
        info.stack_peak_bytes, info.stack_bytes
    );
}
