//! Two jobs:
//!
//! 1. The models. Reads the f32 model file (`models/mnist.digits`, or the one `DIGITS_MODEL`
//!    names), the int8 one (`models/mnist-int8.digits`, or `DIGITS_MODEL_INT8`) and the compact
//!    one (`models/compact.digits`, or `DIGITS_MODEL_COMPACT`), decodes and checks each with
//!    `digits-core`'s own decoder (a wrong or corrupt file stops the build with the core's
//!    message), and writes into `OUT_DIR`
//!    - `model.bin`: the parameters in the exact memory layout of the `#[repr(C)]`
//!      `Mlp<784, 128, 10, f32>` (W1 row by row, b1, W2, b2; the target's byte order), and
//!      `model_int8.bin`, the same for the `#[repr(C)]` `QuantMlp<784, 128, 10>`, which
//!      `src/model.rs` turns into `static`s in flash;
//!    - `model_compact.bin`: the compact network's tensors as the file holds them (codes,
//!      biases, rescale of each layer, little-endian bytes, which `digits_core::compact` reads
//!      in place), one after the other;
//!    - `model_info.rs`, `model_int8_info.rs`, `model_compact_info.rs`: where each came from
//!      (path, dataset, seed, ...); the compact one also its input side and layer list.
//! 2. The linker script. Puts the board's `memory/BOARD.x` (see `board()`) where the linker
//!    finds it as `memory.x`, and links device binaries with cortex-m-rt's `link.x` (which
//!    includes `memory.x`). In a workspace the linker runs in the workspace root, not here, so
//!    `memory.x` goes into `OUT_DIR`, added to the search path.
//!
//! The model is embedded for host builds too: the tests compare it with the file.

use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::model_file::{self, Metadata};
use digits_core::{MnistMlp, MnistQuant, Params};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs, process};

/// The model the project trained itself (see README.md), relative to this package.
const DEFAULT_MODEL: &str = "models/mnist.digits";
/// The same model quantized by `digits quantize` (see README.md).
const DEFAULT_MODEL_INT8: &str = "models/mnist-int8.digits";
/// A compact network (`digits train --arch`, see README.md).
const DEFAULT_MODEL_COMPACT: &str = "models/compact.digits";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let f32_file = embed_models(&out);
    write_factory_slot(&out, &f32_file);

    // The Cortex-M4's DSP instructions (SMLAD, SXTB16, PKHBT) are in ARMv7E-M, not in the
    // Cortex-M3's ARMv7-M nor the Cortex-M0's ARMv6-M: `cfg(dsp)` selects the int8 kernel of
    // src/dsp.rs.
    println!("cargo::rustc-check-cfg=cfg(dsp)");
    println!(
        "cargo::rustc-check-cfg=cfg(board, values(\"mps2-an386\", \"lm3s6965evb\", \
         \"netduinoplus2\", \"microbit\"))"
    );
    let target = env::var("TARGET").unwrap_or_default();
    let board = board(&target);
    println!("cargo:rustc-cfg=board=\"{board}\"");
    if target.starts_with("thumbv7em") {
        println!("cargo:rustc-cfg=dsp");
    }
    let memory = format!("memory/{board}.x");
    println!("cargo:rerun-if-changed={memory}");

    // Host builds (tests, clippy, docs) link normally.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    fs::copy(&memory, out.join("memory.x")).expect("copy the board's memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    // `serve` keeps models in two slots after its own 64 KiB (src/slots.rs), on the M4F boards.
    if board == "mps2-an386" || board == "netduinoplus2" {
        fs::write(out.join("slots.x"), SLOTS_X).expect("write slots.x to OUT_DIR");
        println!("cargo:rustc-link-arg-bin=serve=-Tslots.x");
    }
    // defmt's string table (see src/logger.rs).
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
}

/// The board a build is for (see src/board/): the target says which core, and on the
/// Cortex-M4F the feature `netduinoplus2` picks the STM32F405 over the mps2-an386.
fn board(target: &str) -> &'static str {
    let netduino = env::var_os("CARGO_FEATURE_NETDUINOPLUS2").is_some();
    if netduino && !target.starts_with("thumbv7em") {
        fail(format!(
            "the feature netduinoplus2 is for the STM32F405's target thumbv7em-none-eabihf, \
             not {target}"
        ));
    }
    if target.starts_with("thumbv6m-") {
        "microbit"
    } else if target.starts_with("thumbv7m-") {
        "lm3s6965evb"
    } else if netduino {
        "netduinoplus2"
    } else {
        "mps2-an386"
    }
}

/// Stops the build with `message` (cargo shows a build script's stderr when it fails).
fn fail(message: String) -> ! {
    eprintln!("error: {message}");
    process::exit(1);
}

/// One embedded model: which file, how it is chosen, what it is called in `OUT_DIR`.
struct Embedded {
    /// Environment variable that names another file.
    env: &'static str,
    /// The committed default, relative to this package.
    default: &'static str,
    /// Stem of the files written into `OUT_DIR` (`STEM.bin`, `STEM_info.rs`).
    stem: &'static str,
    kind: Kind,
}

/// What an embedded model file must hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    F32,
    Int8,
    Compact,
}

/// The f32 model (`eval`, `serve`), the int8 model (`eval-int8`) and the compact one
/// (`eval-compact`); a binary that does not use one leaves it out of its flash (the linker drops
/// unreferenced statics).
const MODELS: [Embedded; 3] = [
    Embedded {
        env: "DIGITS_MODEL",
        default: DEFAULT_MODEL,
        stem: "model",
        kind: Kind::F32,
    },
    Embedded {
        env: "DIGITS_MODEL_INT8",
        default: DEFAULT_MODEL_INT8,
        stem: "model_int8",
        kind: Kind::Int8,
    },
    Embedded {
        env: "DIGITS_MODEL_COMPACT",
        default: DEFAULT_MODEL_COMPACT,
        stem: "model_compact",
        kind: Kind::Compact,
    },
];

/// Embeds every model; returns the f32 model file's bytes.
fn embed_models(out: &Path) -> Vec<u8> {
    let mut f32_file = Vec::new();
    for m in &MODELS {
        let bytes = embed_model(out, m);
        if m.kind == Kind::F32 {
            f32_file = bytes;
        }
    }
    f32_file
}

/// The linker script of `serve`'s slots: slot A's factory bytes (the `.slot_a` section) at
/// `_slots_start`, 64 KiB into the flash, and a clear error if the firmware grows into them.
const SLOTS_X: &str = "\
/* serve's model slots (src/slots.rs) start at _slots_start (memory.x). */
SECTIONS
{
  .slot_a _slots_start :
  {
    KEEP(*(.slot_a));
  } > FLASH
} INSERT AFTER .gnu.sgstubs;
ASSERT(LOADADDR(.data) + SIZEOF(.data) <= _slots_start,
  \"serve outgrew the 64 KiB of flash before its model slots (src/slots.rs)\");
";

/// Slot A's bytes with the f32 model (`slot_a.bin`), as the core's update code writes them,
/// cut after the last programmed byte (the rest of the slot is erased flash).
fn write_factory_slot(out: &Path, file: &[u8]) {
    let mut slot = vec![0xFFu8; 448 << 10];
    digits_core::update::image::slot_image(file, &mut slot, 960)
        .unwrap_or_else(|e| fail(format!("the f32 model does not fit serve's slot A: {e}")));
    let end = slot.iter().rposition(|&b| b != 0xFF).map_or(0, |k| k + 1);
    slot.truncate(end.next_multiple_of(4));
    fs::write(out.join("slot_a.bin"), &slot).expect("write slot_a.bin to OUT_DIR");
}

fn embed_model(out: &Path, which: &Embedded) -> Vec<u8> {
    println!("cargo:rerun-if-env-changed={}", which.env);
    let package = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    // A relative DIGITS_MODEL is taken from the workspace root, where cargo is usually run.
    let root = package.parent().expect("firmware/ is inside the workspace");
    let (path, chosen_by) = match env::var_os(which.env).filter(|p| !p.is_empty()) {
        Some(p) => (root.join(p), which.env),
        None => (package.join(which.default), "the default model"),
    };
    println!("cargo:rerun-if-changed={}", path.display());

    let bytes = fs::read(&path).unwrap_or_else(|e| {
        fail(format!(
            "cannot read the model file {} ({chosen_by}; a relative {} is taken from \
             the workspace root {}): {e}",
            path.display(),
            which.env,
            root.display()
        ))
    });
    let bad = |e: model_file::ModelFileError| -> ! {
        fail(format!(
            "model file {} ({chosen_by}): {e}{}",
            path.display(),
            match which.kind {
                Kind::F32 =>
                    " (DIGITS_MODEL takes an f32 model; an int8 one goes in \
                               DIGITS_MODEL_INT8, a compact one in DIGITS_MODEL_COMPACT)",
                Kind::Int8 => " (DIGITS_MODEL_INT8 takes an int8 model: `digits quantize`)",
                Kind::Compact =>
                    " (DIGITS_MODEL_COMPACT takes a compact model: `digits train --arch`)",
            }
        ))
    };
    let any = decode_any(&bytes).unwrap_or_else(|e| bad(e));
    let mut info = String::new();
    let mut blob = Vec::new();
    let meta = match (which.kind, &any) {
        (Kind::Compact, AnyModelFile::Compact(c)) => {
            // The tensors as they are: the core reads them as little-endian bytes anywhere.
            writeln!(
                info,
                "/// Side of the downsampled input image.\n\
                 pub const SIDE: usize = {};\n\
                 /// The layers in order: inputs, outputs, bits per code, windows; their codes, \
                 biases and rescale follow one another in the image in that order.\n\
                 pub const LAYERS: &[LayerShape] = &[",
                c.model.side
            )
            .expect("format");
            for l in &c.model.layers {
                let windows = match l.windows {
                    Some(w) => format!(
                        "Some(Windows {{ side: {}, channels: {}, kernel: {}, stride: {} }})",
                        w.side, w.channels, w.kernel, w.stride
                    ),
                    None => "None".into(),
                };
                writeln!(
                    info,
                    "    LayerShape {{ inputs: {}, outputs: {}, bits: {}, windows: {windows} }},",
                    l.inputs,
                    l.outputs,
                    l.bits.count()
                )
                .expect("format");
                for t in [l.codes, l.bias, l.rescale] {
                    blob.extend_from_slice(t);
                }
            }
            info.push_str("];\n");
            &c.metadata
        }
        (_, AnyModelFile::Compact(_)) => bad(model_file::ModelFileError::CompactModel),
        (Kind::Compact, AnyModelFile::Mlp(m)) => fail(format!(
            "model file {} ({chosen_by}) holds the {} {} network, not a compact one \
             (DIGITS_MODEL_COMPACT takes a compact model: `digits train --arch`)",
            path.display(),
            m.architecture,
            m.precision
        )),
        (kind, AnyModelFile::Mlp(file)) => {
            embed_mlp(kind == Kind::Int8, file, &mut blob).unwrap_or_else(|e| bad(e));
            &file.metadata
        }
    };
    fs::write(out.join(format!("{}.bin", which.stem)), &blob).expect("write the model to OUT_DIR");
    write_info(meta, &path, &mut info);
    fs::write(out.join(format!("{}_info.rs", which.stem)), info)
        .expect("write the model's info to OUT_DIR");
    drop(any);
    bytes
}

/// The 784-128-10 network of `file`, f32 (or int8 if `int8`), in its Rust memory layout.
fn embed_mlp(
    int8: bool,
    file: &model_file::ModelFile<'_>,
    blob: &mut Vec<u8>,
) -> Result<(), model_file::ModelFileError> {
    let little = env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() != Ok("big");
    let word = |b: [u8; 4]| -> [u8; 4] { if little { b } else { [b[3], b[2], b[1], b[0]] } };
    if !int8 {
        let mut model: Box<MnistMlp> = Box::new(MnistMlp::zeros());
        file.load_into(&mut *model)?;
        // The parameters in memory order. `Mlp` and `Dense` are `#[repr(C)]` with only f32
        // arrays, so memory holds hidden.w (row by row), hidden.b, output.w, output.b, no
        // padding: exactly the model's tensors 0..4 one after the other.
        for k in 0..model.tensor_count() {
            for v in model.tensor(k).data {
                blob.extend(word(v.to_le_bytes()));
            }
        }
        // model.rs checks this again at compile time (include_bytes! into an array of this
        // size).
        assert_eq!(blob.len(), size_of::<MnistMlp>(), "layout of Mlp");
    } else {
        let mut q: Box<MnistQuant> = Box::new(MnistQuant::zeroed());
        file.load_int8_into(&mut *q)?;
        // `QuantMlp` is `#[repr(C)]`: its 4-byte arrays in declaration order, then the two
        // byte arrays, no padding.
        for v in q.b1.iter().chain(&q.m1).chain(&q.shift1).chain(&q.b2) {
            blob.extend(word(v.to_le_bytes()));
        }
        for v in q.out_scale.iter().chain([&q.hidden_scale]) {
            blob.extend(word(v.to_le_bytes()));
        }
        blob.extend(q.w1.as_flattened().iter().map(|&c| c as u8));
        blob.extend(q.w2.as_flattened().iter().map(|&c| c as u8));
        assert_eq!(blob.len(), size_of::<MnistQuant>(), "layout of QuantMlp");
    }
    Ok(())
}

/// Appends the provenance constants of `meta`, read from `path`, to `info`.
fn write_info(meta: &Metadata<'_>, path: &Path, info: &mut String) {
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
}
