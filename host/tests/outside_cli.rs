//! Commands run outside the repository: the defaults that are relative to the working directory
//! (`model.digits`) say where they were looked for; the shipped model and the firmware are found
//! in the source tree whatever the working directory (the device side is tested in
//! `device_cli.rs`, which needs QEMU).

mod common;

use common::{digits, run_err, slice};

#[test]
fn a_missing_default_model_names_where_it_was_looked_for() {
    let dir = tempfile::tempdir().unwrap();
    let here = dir.path().canonicalize().unwrap();
    let wanted = here.join("model.digits");
    let cases: [&[&str]; 2] = [&["eval"], &["predict", "x.png"]];
    for args in cases {
        let err = run_err(
            digits()
                .current_dir(&here)
                .env("MNIST_DIR", slice())
                .args(args),
        );
        assert!(
            err.contains(&format!("model.digits ({})", wanted.display())),
            "{args:?}: {err}"
        );
        assert!(err.contains("--model FILE"), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn device_commands_find_the_shipped_model_from_anywhere() {
    // Refused for the model's precision, which means it was found and read: before QEMU is
    // looked for, so this runs on any machine.
    let dir = tempfile::tempdir().unwrap();
    let int8 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../firmware/models/mnist-int8.digits"
    );
    let err = run_err(
        digits()
            .current_dir(dir.path())
            .args(["device", "run", "--model", int8]),
    );
    assert!(err.contains("is an int8 model"), "{err}");
    assert!(err.contains("digits device push"), "{err}");
    assert_eq!(
        host::workspace::file(host::workspace::SHIPPED_MODEL, "--model FILE").unwrap(),
        host::workspace::root()
            .unwrap()
            .join("firmware/models/mnist.digits")
    );
}
