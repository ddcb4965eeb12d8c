//! A reader that closes its end (`digits inspect | head -1`) ends a command quietly: no panic
//! message, the status of a process ended by SIGPIPE, or success.

mod common;

use common::{digits_in, slice, text};
use signal_hook::consts::SIGPIPE;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

/// Runs `cmd` with its standard output a pipe whose reader is already closed, so that its
/// first line of output meets a closed pipe; asserts it ends quietly.
fn ends_quietly_into_a_closed_pipe(cmd: &mut Command) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("digits runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{cmd:?}:\n{stderr}");
    assert!(!stderr.contains("error:"), "{cmd:?}:\n{stderr}");
    assert!(
        out.status.success()
            || out.status.signal() == Some(SIGPIPE)
            || out.status.code() == Some(128 + SIGPIPE),
        "{cmd:?} ended with {}:\n{}",
        out.status,
        text(&out)
    );
}

#[test]
fn every_kind_of_output_ends_quietly_when_its_reader_is_gone() {
    let model = "firmware/models/mnist.digits";
    ends_quietly_into_a_closed_pipe(digits_in(&slice()).args(["inspect", "--json", model]));
    ends_quietly_into_a_closed_pipe(digits_in(&slice()).args(["inspect", model]));
    ends_quietly_into_a_closed_pipe(digits_in(&slice()).args(["eval", "--model", model]));
}
