//! The device: serves the host's requests over its UART with the model of its running flash
//! slot (see `firmware::serve` for what gets which reply, `firmware::slots` for the slots),
//! takes new models into the other slot, and logs what it does with defmt. On the boards whose
//! flash holds two f32 models: the mps2-an386 and the STM32F405 (`netduinoplus2`).
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin serve
//! cargo run -p host --release -- device run        # or device info / predict / eval
//! ```
#![cfg_attr(target_os = "none", no_std, no_main)]

/// Slot A's factory bytes (the shipped f32 model), placed at the start of the slots by
/// `slots.x` so that the image provisions them. Never accessed from Rust: the slots reach this
/// memory as flash (`board::slot_flash`).
#[cfg(all(target_os = "none", any(board = "mps2-an386", board = "netduinoplus2")))]
#[unsafe(link_section = ".slot_a")]
#[used]
static mut FACTORY: [u8; firmware::slots::FACTORY_SLOT.len()] = *firmware::slots::FACTORY_SLOT;

#[cfg(all(target_os = "none", any(board = "mps2-an386", board = "netduinoplus2")))]
#[cortex_m_rt::entry]
fn main() -> ! {
    use digits_core::finetune::MnistTuner;
    use digits_core::update::Slots;
    use firmware::board::{self, BAUD, Uart};
    use firmware::device::{self, CALIBRATION_INSTRUCTIONS, stack};
    use firmware::serve::{Event, Meter, Server};
    use firmware::slots::SLOTS;

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
    // SAFETY: taken once, here.
    let slots = Slots::new(unsafe { board::slot_flash() }, SLOTS);
    match slots.active() {
        Some(a) => defmt::info!(
            "model: slot {=u8}, sequence {=u32}, {=u32} B file",
            a.slot,
            a.header.seq,
            a.header.file_len
        ),
        None => defmt::warn!("no valid model in either slot: push one"),
    }
    let mut server = Server::new(slots, device::BOARD, tuner, board::serve_data(), meter);
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
            Event::Hello => defmt::debug!("hello"),
            Event::PushBegun { slot, len } => {
                defmt::info!("push of {=u32} B into slot {=u8} begun", len, slot)
            }
            Event::Pushed { received } => defmt::debug!("pushed {=u32} B", received),
            Event::Committed { slot, seq } => {
                defmt::info!("committed slot {=u8} (sequence {=u32}): it runs", slot, seq)
            }
            Event::RolledBack { slot } => defmt::info!("rolled back: slot {=u8} runs", slot),
            Event::Skipped(e) => defmt::warn!("skipped a damaged frame: {=str}", frame_error(e)),
            Event::Refused(e) => defmt::warn!("refused: {=str}", refusal(&e)),
        }
        if let Some(frame) = reply.frame {
            uart.write(frame);
        }
    }
}

/// What a damaged frame was, for the log (the messages' full text stays on the host: their
/// formatting would not fit the firmware's 64 KiB).
#[cfg(all(target_os = "none", any(board = "mps2-an386", board = "netduinoplus2")))]
fn frame_error(e: digits_core::frame::FrameError) -> &'static str {
    use digits_core::frame::FrameError::*;
    match e {
        Oversized => "oversized",
        Corrupt => "corrupt",
        Checksum => "bad checksum",
        Malformed => "malformed",
        BufferTooSmall => "buffer too small",
    }
}

/// Why a request was refused, in a word or two, for the log (the host prints the full text).
#[cfg(all(target_os = "none", any(board = "mps2-an386", board = "netduinoplus2")))]
fn refusal(e: &digits_core::protocol::DeviceError) -> &'static str {
    use digits_core::protocol::DeviceError::*;
    use digits_core::update::UpdateError as U;
    match e {
        Frame(_) => "bad frame",
        UnknownRequest { .. } => "unknown request",
        BadImageLength { .. } => "image of the wrong size",
        Tune(_) => "fine-tuning refused",
        BadHyperparameter => "bad hyperparameter",
        NoData => "no data blob",
        BadRange { .. } => "range past the blob",
        Version { .. } => "another protocol version",
        Update(U::TooLarge { .. }) => "push: model larger than the slot",
        Update(U::NotStarted) => "push: none under way",
        Update(U::Offset { .. }) => "push: chunk out of order",
        Update(U::Overrun { .. }) => "push: chunk past the end",
        Update(U::Incomplete { .. }) => "push: commit before the end",
        Update(U::Model(_)) => "push: model file refused",
        Update(U::EnvelopeTooLarge { .. }) => "push: metadata too large",
        Update(U::Flash(_)) => "push: flash write failed",
        Update(U::NoPrevious) => "rollback: no previous model",
        Update(U::Exhausted) => "push: sequence numbers used up",
        NoModel => "no valid model",
        NeedsF32 { .. } => "fine-tuning needs an f32 model",
        BadChunkLength { .. } => "chunk too long",
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
