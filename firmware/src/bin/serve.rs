//! The device: serves the host's requests over its UART with the MNIST model in flash (see
//! `firmware::serve` for what gets which reply), and logs what it does with defmt. On the boards
//! whose flash holds the f32 model: the mps2-an386 and the STM32F405 (`netduinoplus2`).
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin serve
//! cargo run -p host --release -- device run        # or device info / predict / eval
//! ```
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", any(board = "mps2-an386", board = "netduinoplus2")))]
#[cortex_m_rt::entry]
fn main() -> ! {
    use digits_core::finetune::MnistTuner;
    use firmware::board::{self, BAUD, Uart};
    use firmware::device::{self, CALIBRATION_INSTRUCTIONS, stack};
    use firmware::model::MODEL;
    use firmware::serve::{Event, Meter, Server};

    // The output layer being tuned, its momentum and a batch of hidden activations: 33 KB, in
    // .bss rather than on the stack.
    static mut TUNER: MnistTuner = MnistTuner::zeroed();

    stack::paint();
    // SAFETY: the only UART of this program, taken first.
    let mut uart = unsafe { Uart::take() };
    // SAFETY: main runs once and never returns, so this is the only reference to TUNER.
    let tuner = unsafe { &mut *core::ptr::addr_of_mut!(TUNER) };
    let mut clock = board::stopwatch().expect("first take");
    let calibration = device::calibrate(&mut clock);
    let meter = Meter::new(clock, calibration, CALIBRATION_INSTRUCTIONS);
    let mut server = Server::new(&MODEL, device::BOARD, tuner, board::serve_data(), meter);
    let memory = firmware::device::memory();
    defmt::info!(
        "serving on the UART at {=u32} baud: flash {=u32} B, static RAM {=u32} B, stack {=u32} B",
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
            Event::Reset => defmt::info!("fine-tuning reset to the flash weights"),
            Event::Sampled { batch } => defmt::debug!("sample {=u32} of the batch", batch),
            Event::Trained { samples, loss } => {
                defmt::info!("trained on {=u32} samples, loss {=f32}", samples, loss)
            }
            Event::Evaluated { images, correct } => match correct {
                Some(correct) => defmt::info!("evaluated {=u32}: {=u32} correct", images, correct),
                None => defmt::info!("evaluated {=u32} unlabeled images", images),
            },
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

// The f32 model does not fit the other boards' 256 KiB of flash: there it only says so.
#[cfg(all(
    target_os = "none",
    not(any(board = "mps2-an386", board = "netduinoplus2"))
))]
#[cortex_m_rt::entry]
fn main() -> ! {
    defmt::error!("serve runs on the mps2-an386 and the netduinoplus2 (the f32 model's flash)");
    firmware::device::exit(false)
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("serve: a device-only program (--target thumbv7em-none-eabihf)");
    std::process::exit(2);
}
