//! Pushing model files into slots: the bytes a slot ends up with, the model that runs, and
//! every refusal, which leaves the running model as it was.

mod common;

use common::update::{PAGE_SLOTS, PAGES, factory_area, file_crc as crc, model};

use common::sim_flash::SimFlash;
use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::model_file::{self, ModelFileError, decode};
use digits_core::update::image::slot_image;
use digits_core::update::layout::{GEOMETRY, SLOTS};
use digits_core::update::slot::{ENVELOPE_AT, IMAGE_AT};
use digits_core::update::{Geometry, Kind, Slots, State, UpdateError};
use digits_core::{MnistMlp, MnistQuant};

/// Flash as the mps2-an386 starts: zeros (its code memory is RAM), slot A holding `factory`.
fn factory_flash(factory: &[u8]) -> SimFlash {
    SimFlash::new(factory_area(factory), GEOMETRY)
}

fn push(slots: &mut Slots<SimFlash>, file: &[u8], chunk: usize) -> Result<(), UpdateError> {
    slots.begin(file.len() as u32)?;
    for (k, piece) in file.chunks(chunk).enumerate() {
        slots.chunk((k * chunk) as u32, piece)?;
    }
    slots.commit().map(|_| ())
}

/// Little-endian bytes of an f32 model's parameters in `#[repr(C)]` order (W1, b1, W2, b2),
/// written out field by field: the reference the placed image must equal.
fn f32_image(file: &[u8]) -> Vec<u8> {
    let mut m: Box<MnistMlp> = bytemuck::zeroed_box();
    decode(file).unwrap().load_into(&mut m).unwrap();
    let mut out = Vec::new();
    for v in m.hidden.w.as_flattened().iter().chain(&m.hidden.b) {
        out.extend(v.to_le_bytes());
    }
    for v in m.output.w.as_flattened().iter().chain(&m.output.b) {
        out.extend(v.to_le_bytes());
    }
    out
}

/// The same for an int8 model: b1, m1, shift1, b2, out_scale, hidden_scale, w1, w2.
fn int8_image(file: &[u8]) -> Vec<u8> {
    let mut q: Box<MnistQuant> = bytemuck::zeroed_box();
    decode(file).unwrap().load_int8_into(&mut q).unwrap();
    let mut out = Vec::new();
    for v in q.b1.iter().chain(&q.m1).chain(&q.shift1).chain(&q.b2) {
        out.extend(v.to_le_bytes());
    }
    for v in q.out_scale.iter().chain([&q.hidden_scale]) {
        out.extend(v.to_le_bytes());
    }
    out.extend(q.w1.as_flattened().iter().map(|&c| c as u8));
    out.extend(q.w2.as_flattened().iter().map(|&c| c as u8));
    out
}

#[test]
fn placed_images_are_the_models_memory_layout_for_any_chunking() {
    for (name, kind) in [
        ("mnist.digits", Kind::F32),
        ("mnist-int8.digits", Kind::Int8),
        ("compact.digits", Kind::Compact),
        ("compact-conv.digits", Kind::Compact),
    ] {
        let file = model(name);
        let mut reference = vec![0u8; 448 << 10];
        slot_image(&file, &mut reference, 960).unwrap();
        for chunk in [1, 7, 256, 960, file.len()] {
            let mut other = vec![0u8; 448 << 10];
            slot_image(&file, &mut other, chunk).unwrap();
            assert!(
                other == reference,
                "{name}: chunks of {chunk} give other bytes"
            );
        }
        let slots = Slots::new(
            digits_core::update::RamFlash::new(&mut reference, Geometry::Uniform { sector: 4096 }),
            [0..448 << 10, 448 << 10..448 << 10],
        );
        let active = slots.active().expect("the model runs");
        assert_eq!(active.header.kind, kind, "{name}");
        assert_eq!(active.header.seq, 0);
        assert_eq!(active.header.file_len as usize, file.len());
        let content = active.content;
        match kind {
            Kind::F32 => assert!(content.image == f32_image(&file)),
            Kind::Int8 => assert!(content.image == int8_image(&file)),
            Kind::Compact => {
                assert!(content.envelope == file, "{name}: kept verbatim");
                let AnyModelFile::Compact(f) = decode_any(&file).unwrap() else {
                    panic!("compact")
                };
                assert_eq!(
                    content.compact().unwrap().layers.len(),
                    f.model.layers.len()
                );
            }
        }
        let meta = content.metadata();
        let expected = match decode_any(&file).unwrap() {
            AnyModelFile::Mlp(f) => f.metadata,
            AnyModelFile::Compact(f) => f.metadata,
        };
        assert_eq!(meta, expected, "{name}: metadata from the envelope");
        if kind != Kind::Compact {
            let envelope = content.envelope.len();
            assert!(ENVELOPE_AT as usize + envelope <= IMAGE_AT as usize);
            println!(
                "{name}: {} B file = {envelope} B envelope + {} B image",
                file.len(),
                content.image.len()
            );
            assert_eq!(envelope + content.image.len(), file.len());
        }
    }
}

#[test]
fn push_then_rollback_switches_models_and_sequence_numbers_grow() {
    let (f32_file, int8_file, compact) = (
        model("mnist.digits"),
        model("mnist-int8.digits"),
        model("compact.digits"),
    );
    let mut slots = Slots::new(factory_flash(&f32_file), SLOTS);
    let running = |s: &Slots<SimFlash>| {
        let a = s.active().unwrap();
        (a.slot, a.header.seq, a.header.file_crc)
    };
    assert_eq!(running(&slots), (0, 0, crc(&f32_file)));
    assert_eq!(slots.rollback(), Err(UpdateError::NoPrevious));

    push(&mut slots, &int8_file, 960).unwrap();
    assert_eq!(running(&slots), (1, 1, crc(&int8_file)));
    push(&mut slots, &compact, 500).unwrap();
    assert_eq!(running(&slots), (0, 2, crc(&compact)));
    let summary = slots.summary();
    assert_eq!(summary[1].state, State::Valid);
    assert!(summary[0].active && !summary[1].active);

    slots.rollback().unwrap();
    assert_eq!(running(&slots), (1, 1, crc(&int8_file)));
    assert_eq!(slots.summary()[0].state, State::Revoked);
    assert_eq!(
        slots.rollback(),
        Err(UpdateError::NoPrevious),
        "one step back only"
    );

    // What a boot finds is what ran.
    let mut flash = slots.into_flash();
    let booted = Slots::new(common::sim_flash::ram(&mut flash.bytes, GEOMETRY), SLOTS);
    let a = booted.active().unwrap();
    assert_eq!((a.slot, a.header.seq), (1, 1));
    assert_eq!(booted.summary()[0].state, State::Revoked);

    // A push after a rollback goes into the revoked slot.
    let mut slots = Slots::new(flash, SLOTS);
    push(&mut slots, &f32_file, 960).unwrap();
    assert_eq!(running(&slots), (0, 2, crc(&f32_file)));
}

/// Runs `attempt` on slots holding the factory f32 model (A) and the int8 one (B, running),
/// checks it is refused with `expected`, and that the running model and its slot's bytes are
/// as they were.
fn refused(
    what: &str,
    expected: impl Fn(&UpdateError) -> bool,
    attempt: impl FnOnce(&mut Slots<SimFlash>) -> Result<(), UpdateError>,
) {
    let mut slots = Slots::new(factory_flash(&model("mnist.digits")), SLOTS);
    push(&mut slots, &model("mnist-int8.digits"), 960).unwrap();
    let before = slots.active().unwrap().header;
    let b_bytes = slots.flash().bytes[SLOTS[1].start as usize..].to_vec();
    let result = attempt(&mut slots);
    let error = result.expect_err(what);
    assert!(expected(&error), "{what}: refused with {error:?}");
    println!("{what}: {error}");
    assert_eq!(slots.active().unwrap().header, before, "{what}");
    assert!(
        slots.flash().bytes[SLOTS[1].start as usize..] == b_bytes[..],
        "{what}: the running slot was written"
    );
    // And a boot agrees.
    let mut flash = slots.into_flash();
    let booted = Slots::new(common::sim_flash::ram(&mut flash.bytes, GEOMETRY), SLOTS);
    assert_eq!(
        booted.active().unwrap().header,
        before,
        "{what}: after a boot"
    );
}

fn reseal(file: &mut [u8]) {
    let n = file.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&file[..n]);
    file[n..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn bad_pushes_are_refused_and_the_running_model_stays() {
    let f32_file = model("mnist.digits");
    let compact = model("compact.digits");
    let model_error = |e: &UpdateError| matches!(e, UpdateError::Model(_));

    let truncated = f32_file[..f32_file.len() - 1000].to_vec();
    refused("a truncated file", model_error, |s| {
        push(s, &truncated, 960)
    });
    refused(
        "a commit before the last byte",
        |e| matches!(e, UpdateError::Incomplete { .. }),
        |s| {
            s.begin(compact.len() as u32)?;
            s.chunk(0, &compact[..5000])?;
            s.commit().map(|_| ())
        },
    );
    let mut flipped = f32_file.clone();
    flipped[200_000] ^= 0x10;
    refused(
        "a flipped bit in a weight",
        |e| matches!(e, UpdateError::Model(ModelFileError::BadChecksum { .. })),
        |s| push(s, &flipped, 960),
    );
    let mut magic = compact.clone();
    magic[0] = b'X';
    refused(
        "a wrong magic",
        |e| matches!(e, UpdateError::Model(ModelFileError::BadMagic { .. })),
        |s| push(s, &magic, 960),
    );
    let mut version = compact.clone();
    version[8] = 9;
    refused(
        "an unknown format version",
        |e| {
            matches!(
                e,
                UpdateError::Model(ModelFileError::UnsupportedVersion { found: 9 })
            )
        },
        |s| push(s, &version, 960),
    );
    // A 784-32-2 network (the "not a digit" detector's shape).
    let mut other: Box<digits_core::Mlp<784, 32, 2>> = bytemuck::zeroed_box();
    other.hidden.b[0] = 1.0;
    let meta = model_file::Metadata {
        dataset: "mnist",
        test_accuracy: None,
        seed: 1,
        epochs: 1,
        options: "",
    };
    let mut buf = vec![0u8; model_file::encoded_len_bound(784 * 32 + 32 + 66, 16)];
    let n = model_file::encode(&*other, &meta, &mut buf).unwrap();
    let detector = buf[..n].to_vec();
    refused(
        "another architecture",
        |e| {
            matches!(
                e,
                UpdateError::Model(ModelFileError::WrongArchitecture { .. })
            )
        },
        |s| push(s, &detector, 960),
    );
    // NaN weights under a valid checksum.
    let mut nan = f32_file.clone();
    let at = nan.len() - 4 - 40; // inside b2
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut nan);
    refused(
        "NaN weights, resealed",
        |e| {
            matches!(
                e,
                UpdateError::Model(ModelFileError::NonFinite { index: 3 })
            )
        },
        |s| push(s, &nan, 960),
    );
    // An int8 shift of 0 under a valid checksum.
    let original = model("mnist-int8.digits");
    let file = decode(&original).unwrap();
    let at = file.tensors[3].bytes.as_ptr() as usize - original.as_ptr() as usize;
    let mut int8 = original.clone();
    int8[at..at + 4].copy_from_slice(&0i32.to_le_bytes());
    reseal(&mut int8);
    refused(
        "an int8 shift of 0, resealed",
        |e| {
            matches!(
                e,
                UpdateError::Model(ModelFileError::OutOfRange { index: 3 })
            )
        },
        |s| push(s, &int8, 960),
    );
    refused(
        "a chunk out of order",
        |e| {
            matches!(
                e,
                UpdateError::Offset {
                    expected: 960,
                    got: 1920
                }
            )
        },
        |s| {
            s.begin(compact.len() as u32)?;
            s.chunk(0, &compact[..960])?;
            s.chunk(1920, &compact[1920..2880]).map(|_| ())
        },
    );
    refused(
        "a repeated chunk",
        |e| {
            matches!(
                e,
                UpdateError::Offset {
                    expected: 960,
                    got: 0
                }
            )
        },
        |s| {
            s.begin(compact.len() as u32)?;
            s.chunk(0, &compact[..960])?;
            s.chunk(0, &compact[..960]).map(|_| ())
        },
    );
    refused(
        "a chunk past the announced length",
        |e| matches!(e, UpdateError::Overrun { .. }),
        |s| {
            s.begin(100)?;
            s.chunk(0, &compact[..960]).map(|_| ())
        },
    );
    refused(
        "a chunk without a push",
        |e| *e == UpdateError::NotStarted,
        |s| s.chunk(0, &compact[..960]).map(|_| ()),
    );
    refused(
        "a commit without a push",
        |e| *e == UpdateError::NotStarted,
        |s| s.commit().map(|_| ()),
    );
    refused(
        "a chunk after a refused one",
        |e| *e == UpdateError::NotStarted,
        |s| {
            s.begin(magic.len() as u32)?;
            assert!(s.chunk(0, &magic[..960]).is_err());
            s.chunk(960, &magic[960..1920]).map(|_| ())
        },
    );
    refused(
        "a push never finished, then a boot",
        |e| *e == UpdateError::NotStarted,
        |s| {
            s.begin(compact.len() as u32)?;
            s.chunk(0, &compact[..5000])?;
            s.select();
            s.commit().map(|_| ())
        },
    );
    refused(
        "a file larger than the slot",
        |e| matches!(e, UpdateError::TooLarge { .. }),
        |s| s.begin(1 << 20).map(|_| ()),
    );
    let mut long = compact.clone();
    long.extend([0u8; 7]);
    refused("bytes after the checksum", model_error, |s| {
        push(s, &long, 960)
    });
}

#[test]
fn every_bit_flip_of_a_compact_and_an_int8_file_is_refused() {
    for (name, stride) in [("compact.digits", 1), ("mnist-int8.digits", 97)] {
        let file = model(name);
        let mut slot = vec![0u8; 208 << 10];
        let mut refused = 0;
        for bit in (0..file.len() * 8).step_by(stride) {
            let mut bad = file.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            if slot_image(&bad, &mut slot, 960).is_err() {
                refused += 1;
            } else {
                panic!("{name}: bit {bit} flipped was accepted");
            }
        }
        println!("{name}: {refused} bit flips tried, all refused");
    }
}

#[test]
fn what_fits_a_256_kib_part() {
    let mut flash = SimFlash::new(vec![0xFF; 208 << 10], PAGES);
    slot_image(
        &model("mnist-int8.digits"),
        &mut flash.bytes[..104 << 10],
        960,
    )
    .unwrap();
    let mut slots = Slots::new(flash, PAGE_SLOTS);
    assert_eq!(slots.active().unwrap().header.kind, Kind::Int8);
    let f32_file = model("mnist.digits");
    let e = push(&mut slots, &f32_file, 960).unwrap_err();
    assert!(matches!(e, UpdateError::TooLarge { .. }), "{e:?}");
    println!("f32 on 104 KiB slots: {e}");
    push(&mut slots, &model("compact.digits"), 960).unwrap();
    push(&mut slots, &model("mnist-int8.digits"), 960).unwrap();
    assert_eq!(slots.active().unwrap().header.seq, 2);
}
