//! Two jobs:
//!
//! 1. The model. Reads the model file (`models/mnist.digits`, or the one `DIGITS_MODEL` names),
//!    decodes and checks it with `digits-core`'s own decoder (a wrong or corrupt file stops the
//!    build with the core's message), and writes into `OUT_DIR`
//!    - `model.bin`: the parameters in the exact memory layout of the `#[repr(C)]`
//!      `Mlp<784, 128, 10, f32>` (W1 row by row, b1, W2, b2; the target's byte order), which
//!      `src/model.rs` turns into a `static` in flash;
//!    - `model_info.rs`: where the model came from (path, dataset, seed, ...), as constants.
//! 2. The linker script. Puts `memory.x` where the linker finds it and links device binaries
//!    with cortex-m-rt's `link.x` (which includes `memory.x`). In a workspace the linker runs in
//!    the workspace root, not here, so `memory.x` goes into `OUT_DIR`, added to the search path.
//!
//! The model is embedded for host builds too: the tests compare it with the file.

use digits_core::model_file;
use digits_core::{MnistMlp, Params};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, process};

/// The model the project trained itself (see README.md), relative to this package.
const DEFAULT_MODEL: &str = "models/mnist.digits";

fn main() {
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    embed_model(&out);

    // Host builds (tests, clippy, docs) link normally.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    // defmt's string table (see src/logger.rs).
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}

/// Stops the build with `message` (cargo shows a build script's stderr when it fails).
fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    process::exit(1);
}

fn embed_model(out: &Path) {
    println!("cargo:rerun-if-env-changed=DIGITS_MODEL");
    let package = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    // A relative DIGITS_MODEL is taken from the workspace root, where cargo is usually run.
    let root = package.parent().expect("firmware/ is inside the workspace");
    let (path, chosen_by) = match env::var_os("DIGITS_MODEL").filter(|p| !p.is_empty()) {
        Some(p) => (root.join(p), "DIGITS_MODEL"),
        None => (package.join(DEFAULT_MODEL), "the default model"),
    };
    println!("cargo:rerun-if-changed={}", path.display());

    let bytes = fs::read(&path).unwrap_or_else(|e| {
        fail(format!(
            "cannot read the model file {} ({chosen_by}; a relative DIGITS_MODEL is taken from \
             the workspace root {}): {e}",
            path.display(),
            root.display()
        ))
    });
    let bad = |e: model_file::ModelFileError| -> ! {
        fail(format!("model file {} ({chosen_by}): {e}", path.display()))
    };
    let file = model_file::decode(&bytes).unwrap_or_else(|e| bad(e));
    let mut model: Box<MnistMlp> = Box::new(MnistMlp::zeros());
    file.load_into(&mut *model).unwrap_or_else(|e| bad(e));

    // The parameters in memory order. `Mlp` and `Dense` are `#[repr(C)]` with only f32 arrays,
    // so memory holds hidden.w (row by row), hidden.b, output.w, output.b, no padding: exactly
    // the model's tensors 0..4 one after the other.
    let little = env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() != Ok("big");
    let mut blob = Vec::with_capacity(size_of::<MnistMlp>());
    for k in 0..model.tensor_count() {
        for v in model.tensor(k).data {
            blob.extend(if little {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            });
        }
    }
    // model.rs checks this again at compile time (include_bytes! into an array of this size).
    assert_eq!(blob.len(), size_of::<MnistMlp>(), "layout of Mlp");
    fs::write(out.join("model.bin"), &blob).expect("write model.bin to OUT_DIR");

    let meta = &file.metadata;
    let mut info = String::new();
    let accuracy = match meta.test_accuracy {
        Some(a) => format!("Some(f32::from_bits({:#010x}))", a.to_bits()),
        None => "None".to_owned(),
    };
    writeln!(
        info,
        "/// The model file embedded at build time.\n\
         pub const SOURCE: &str = {:?};\n\
         /// Dataset the model was trained on.\n\
         pub const DATASET: &str = {:?};\n\
         /// Test accuracy recorded in the model file (a fraction), if any.\n\
         pub const TEST_ACCURACY: Option<f32> = {accuracy};\n\
         /// Seed of the training run.\n\
         pub const TRAINING_SEED: u64 = {};\n\
         /// Epochs trained.\n\
         pub const EPOCHS: u32 = {};",
        path.display().to_string(),
        meta.dataset,
        meta.seed,
        meta.epochs,
    )
    .expect("format");
    fs::write(out.join("model_info.rs"), info).expect("write model_info.rs to OUT_DIR");
}
