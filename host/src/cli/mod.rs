//! The command line as people meet it. What it accepts is checked while it is parsed: before
//! any data is read and before anything is written, a bad value is refused with one line
//! naming the option, the value and what would be valid.
//!
//! - [`broken_pipe`]: a closed reader of the output ends a command quietly;
//! - [`number`]: numbers within their valid range (floats also finite);
//! - [`output`]: files and directories a command will write, checked writable;
//! - [`progress`]: progress bars with a readable rate and an honest time left.

pub mod broken_pipe;
pub mod number;
pub mod output;
pub mod progress;

/// The error clap prints for `value` of `arg`: `invalid value 'V' for '--opt <X>': why`.
fn invalid(
    cmd: &clap::Command,
    arg: Option<&clap::Arg>,
    value: &std::ffi::OsStr,
    why: String,
) -> clap::Error {
    use clap::builder::TypedValueParser;
    // Clap's own wording for a value its parser refuses, whatever the value's encoding.
    let refuse = move |_: &str| Err::<(), String>(why.clone());
    let shown = value.to_string_lossy();
    match refuse.parse_ref(cmd, arg, std::ffi::OsStr::new(shown.as_ref())) {
        Err(e) => e,
        Ok(()) => unreachable!("the parser always refuses"),
    }
}
