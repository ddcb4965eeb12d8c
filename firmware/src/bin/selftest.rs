//! The program for a real board with no host attached: at power-up each embedded model (int8
//! and compact) classifies the built-in digits, and the answers go out as text on the board's
//! serial port at 115,200 baud (`firmware::selftest`); then the core sleeps. On the micro:bit
//! that port is the USB serial port of its interface chip: `digits device hex --board microbit`
//! makes the file to copy onto its drive (see README.md, "On a real board").
//!
//! On the host, `cargo run -p firmware --bin selftest` prints the same text.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(all(target_os = "none", not(board = "lm3s6965evb")))]
#[cortex_m_rt::entry]
fn main() -> ! {
    use core::fmt::Write;
    use firmware::board::{self, Uart};

    /// The UART as a `fmt::Write`.
    struct Serial(Uart);
    impl Write for Serial {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            for line in s.split_inclusive('\n') {
                // Terminals want CR LF.
                match line.strip_suffix('\n') {
                    Some(text) => {
                        self.0.write(text.as_bytes());
                        self.0.write(b"\r\n");
                    }
                    None => self.0.write(line.as_bytes()),
                }
            }
            Ok(())
        }
    }

    // SAFETY: the only UART of this program.
    let mut serial = Serial(unsafe { Uart::take() });
    let right = firmware::selftest::run(board::NAME, &mut serial);
    defmt::info!("self-test done: {=bool}", right == Ok(true));
    loop {
        cortex_m::asm::wfi();
    }
}

// The lm3s6965evb's UART has no driver here: it only says so.
#[cfg(all(target_os = "none", board = "lm3s6965evb"))]
#[cortex_m_rt::entry]
fn main() -> ! {
    defmt::error!("selftest needs a board with a UART driver: microbit, netduinoplus2, mps2-an386");
    firmware::device::exit(false)
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    let mut out = String::new();
    let right = firmware::selftest::run("host", &mut out).expect("a String takes any text");
    print!("{out}");
    if right {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
