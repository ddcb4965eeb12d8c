//! `digits device info`: what the device reports about itself.

use anyhow::Result;
use clap::Args;
use digits_core::protocol::{DeviceInfo, Stats};
use digits_core::update::{SlotSummary, State};
use serde::Serialize;

use super::Query;

/// Options of `digits device info`.
#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    query: Query,
}

/// The whole report, as `--json` prints it.
#[derive(Serialize)]
struct InfoReport {
    /// The device's `DeviceInfo`, its fields at the top level.
    #[serde(flatten)]
    info: serde_json::Value,
    counters: Stats,
}

/// Runs `digits device info`: the device's firmware, model, memory and counters.
pub fn run(args: &InfoArgs) -> Result<()> {
    let json = args.query.json;
    let mut session = args.query.open("info")?;
    // The info borrows the link's buffer: taken down before the next request.
    let info = session.link.info()?;
    let info_json = serde_json::to_value(&info)?;
    if !json {
        print_info(&info);
    }
    let counters = session.link.stats()?;
    if json {
        let report = InfoReport {
            info: info_json,
            counters,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "counters      {} requests, {} images classified, {} damaged frames, {} unknown \
             requests",
            counters.requests, counters.classified, counters.bad_frames, counters.unknown_requests
        );
    }
    session.close()
}

fn print_info(info: &DeviceInfo<'_>) {
    println!(
        "firmware      {} (protocol {}) on {}",
        info.firmware, info.protocol, info.board
    );
    match &info.model {
        Some(m) => {
            let accuracy = m
                .test_accuracy
                .map_or("not recorded".to_owned(), |a| format!("{:.2}%", 100.0 * a));
            println!(
                "model         {}, trained on {}, test accuracy {accuracy}, parameters digest \
                 {:016x}, file of {} B (CRC {:08x})",
                m.description, m.dataset, m.params_fnv64, m.file_len, m.file_crc
            );
        }
        None => println!("model         none valid: push one (`digits device push MODEL`)"),
    }
    for slot in &info.slots {
        println!(
            "slot {}        {}",
            slot_name(slot.slot),
            describe_slot(slot)
        );
    }
    println!(
        "push          models of up to {} B (the free slot)",
        info.slot_capacity
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

/// `A` or `B`.
pub fn slot_name(slot: u8) -> char {
    if slot == 0 { 'A' } else { 'B' }
}

/// What a slot holds, in words.
pub fn describe_slot(slot: &SlotSummary) -> String {
    let state = match slot.state {
        State::Empty => return "empty".to_owned(),
        State::Valid if slot.active => "running",
        State::Valid => "valid (the previous model: `digits device rollback` runs it)",
        State::Revoked => "rolled back from",
        State::Damaged => "damaged (ignored)",
    };
    match slot.header {
        Some(h) => format!(
            "{state}: {} model, {} B file (CRC {:08x}), sequence {}",
            h.kind, h.file_len, h.file_crc, h.seq
        ),
        None => state.to_owned(),
    }
}
