//! Classifies the images of a data blob with the MNIST model in flash (see `firmware::eval` for
//! the blob and the report) and measures the instructions per inference.
//!
//! On the device the blob is loaded by QEMU into the PSRAM:
//!
//! ```text
//! cargo build -p firmware --release --target thumbv7em-none-eabihf --bin eval
//! qemu-system-arm -M mps2-an386 -cpu cortex-m4 -nographic \
//!   -semihosting-config enable=on,target=native -icount shift=0 \
//!   -device loader,file=BLOB,addr=0x21000000,force-raw=on \
//!   -kernel target/thumbv7em-none-eabihf/release/eval
//! ```
//!
//! A missing or malformed blob exits QEMU with status 1 and the reason on stderr.
//! On the host, `cargo run -p firmware --bin eval -- BLOB` prints the host's report of the same
//! blob (without timings), for comparison.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    use core::fmt::Write;
    use firmware::device::{self, CALIBRATION_INSTRUCTIONS, SysTick};
    use firmware::eval::{Blob, evaluate};
    use firmware::model::MODEL;

    device::run(|out| {
        let blob = Blob::parse(device::psram())?;
        let peripherals = cortex_m::Peripherals::take().ok_or("peripherals taken")?;
        let mut systick = SysTick::new(peripherals.SYST);
        let calibration = device::calibrate(&mut systick);
        let summary = evaluate(&MODEL, &blob, &mut systick, out).map_err(|_| "cannot print")?;
        writeln!(
            out,
            "calibration_ticks {calibration} # for {CALIBRATION_INSTRUCTIONS} instructions"
        )
        .map_err(|_| "cannot print")?;
        if calibration > 0 {
            // instructions = ticks * CALIBRATION_INSTRUCTIONS / calibration, per image, in
            // tenths (integers only).
            let tenths = summary.inference_ticks * CALIBRATION_INSTRUCTIONS as u64 * 10
                / (calibration as u64 * summary.images as u64);
            writeln!(
                out,
                "instructions_per_inference {}.{} # exact only under qemu -icount",
                tenths / 10,
                tenths % 10
            )
            .map_err(|_| "cannot print")?;
        }
        Ok(())
    })
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    use firmware::eval::{Blob, NoStopwatch, evaluate};
    use firmware::model::MODEL;
    use std::process::ExitCode;

    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: eval BLOB (a data blob, see firmware::eval)");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let blob = match Blob::parse(&bytes) {
        Ok(blob) => blob,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = String::new();
    evaluate(&MODEL, &blob, &mut NoStopwatch, &mut out).expect("format into a String");
    print!("{out}");
    println!("ok");
    ExitCode::SUCCESS
}
