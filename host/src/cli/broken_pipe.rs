//! A reader that closes its end ends a command quietly: `digits inspect | head -1` stops when
//! `head` has its line, as `cat` would, without a panic message.
//!
//! Rust ignores SIGPIPE, so printing to a closed pipe fails and `println!` panics. The default
//! SIGPIPE is not restored from the start: a write to a pipe to QEMU that died would then end
//! `digits` without the error that says what happened. Instead that one panic is silenced, the
//! stack unwound (the QEMU guards stop their QEMU) and the process ended by SIGPIPE, which a
//! shell reports as status 141 (128 + the signal).

use std::any::Any;
use std::io;
use std::panic::{self, AssertUnwindSafe};

use signal_hook::consts::SIGPIPE;

/// Status of a process ended by SIGPIPE, as a shell reports it: where the signal cannot be
/// raised, the process exits with it.
const SIGPIPE_STATUS: i32 = 128 + SIGPIPE;

/// Runs `command`; if it panicked printing to a closed standard output or error, ends the
/// process by SIGPIPE without a word. Other panics go on as before.
pub fn quiet_on_broken_pipe<T>(command: impl FnOnce() -> T) -> T {
    let report = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !is_broken_pipe(info.payload()) {
            report(info);
        }
    }));
    // Nothing is looked at after a panic but its payload.
    match panic::catch_unwind(AssertUnwindSafe(command)) {
        Ok(value) => value,
        Err(payload) if is_broken_pipe(&*payload) => {
            signal_hook::low_level::emulate_default_handler(SIGPIPE).ok();
            std::process::exit(SIGPIPE_STATUS)
        }
        Err(payload) => panic::resume_unwind(payload),
    }
}

/// Whether a panic's payload is the standard library's `failed printing to stdout: ...` (or
/// stderr) for a closed pipe.
fn is_broken_pipe(payload: &(dyn Any + Send)) -> bool {
    let text = match payload.downcast_ref::<String>() {
        Some(s) => s.as_str(),
        None => match payload.downcast_ref::<&str>() {
            Some(s) => s,
            None => return false,
        },
    };
    let Some(error) = ["stdout", "stderr"]
        .iter()
        .find_map(|stream| text.strip_prefix(&format!("failed printing to {stream}: ")))
    else {
        return false;
    };
    // An OS error shows as `description (os error N)`; the description may be translated.
    error
        .rsplit_once("(os error ")
        .and_then(|(_, code)| code.strip_suffix(')')?.parse().ok())
        .is_some_and(|code| io::Error::from_raw_os_error(code).kind() == io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(text: &str) -> Box<dyn Any + Send> {
        Box::new(text.to_string())
    }

    #[test]
    fn only_printing_to_a_closed_pipe_is_a_broken_pipe() {
        // The error a write to a closed pipe really gets (SIGPIPE is ignored here too).
        let (reader, mut writer) = io::pipe().unwrap();
        drop(reader);
        let closed = io::Write::write_all(&mut writer, b"x").unwrap_err();
        assert_eq!(closed.kind(), io::ErrorKind::BrokenPipe);
        for stream in ["stdout", "stderr"] {
            let text = format!("failed printing to {stream}: {closed}");
            assert!(is_broken_pipe(&*payload(&text)), "{text}");
        }
        let full = io::Error::from(io::ErrorKind::StorageFull);
        for text in [
            format!("failed printing to stdout: {full}"),
            format!("failed reading from stdout: {closed}"),
            "a failure while the device runs".to_string(),
        ] {
            assert!(!is_broken_pipe(&*payload(&text)), "{text}");
        }
        assert!(!is_broken_pipe(&*Box::new(7u32)));
    }
}
