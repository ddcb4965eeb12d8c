//! The device: serves the host's requests over UART0 with the MNIST model in flash (see
//! `firmware::serve` for what gets which reply), and logs what it does with defmt.
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin serve
//! cargo run -p host --release -- device run        # or device info / predict / eval
//! ```
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    use firmware::device::stack;
    use firmware::model::MODEL;
    use firmware::serve::{Event, Server};
    use firmware::uart::{BAUD, Uart};

    stack::paint();
    // SAFETY: the only UART0 of this program.
    let mut uart = unsafe { Uart::take() };
    let mut server = Server::new(&MODEL, firmware::device::BOARD);
    let memory = firmware::device::memory();
    defmt::info!(
        "serving on UART0 at {=u32} baud: flash {=u32} B, static RAM {=u32} B, stack {=u32} B",
        BAUD,
        memory.flash_bytes,
        memory.static_ram_bytes,
        memory.stack_bytes
    );
    loop {
        let byte = uart.read();
        let Some(reply) = server.push(byte, firmware::device::memory) else {
            continue;
        };
        match reply.event {
            Event::Ping => defmt::debug!("ping"),
            Event::Info => defmt::info!("info"),
            Event::Classified { digit } => defmt::debug!("classified: {=u8}", digit),
            Event::Stats => defmt::info!("stats"),
            Event::Skipped(e) => {
                defmt::warn!("skipped a damaged frame: {}", defmt::Display2Format(&e))
            }
            Event::Refused(e) => defmt::warn!("refused: {}", defmt::Display2Format(&e)),
        }
        if let Some(frame) = reply.frame {
            uart.write(frame);
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("serve: a device-only program (--target thumbv7em-none-eabihf)");
    std::process::exit(2);
}
