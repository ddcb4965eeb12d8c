//! The boot check: a forward pass, one SGD step and the logits again, printed as `f32` bits
//! (see the library docs). `cargo run -p firmware --release --target thumbv7em-none-eabihf`
//! runs it in QEMU; on the host it prints the host's numbers for comparison.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
#[cortex_m_rt::entry]
fn main() -> ! {
    firmware::device::run(firmware::boot)
}

#[cfg(not(target_os = "none"))]
fn main() -> std::process::ExitCode {
    let mut out = String::new();
    let result = firmware::boot(&mut out);
    print!("{out}");
    match result {
        Ok(()) => {
            println!("ok");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
