//! Writes the fuzz targets' seed corpora, `fuzz/seeds/<target>/`: valid inputs of every kind
//! each decoder reads, small so that the fuzzers mutate them quickly.
//! `cargo run -p tests --example fuzz_seeds`. The digits are the first MNIST test images
//! (`testkit::test_digits`: the full set where it is found, else the committed slice, whose
//! first images are the same).

use digits_core::compact::{Compact, Layer};
use digits_core::compact_file::encode_compact;
use digits_core::conv::Windows;
use digits_core::finetune::Gradient;
use digits_core::frame::{FrameWriter, MAX_FRAME};
use digits_core::lowbit::Bits;
use digits_core::model_file::{self, Metadata};
use digits_core::protocol::{DeviceError, Request, Response};
use digits_core::{Mlp, QuantMlp, Rng};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::io::Write;
use std::path::Path;
use testkit::Labeled;

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn postcard_bytes<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    postcard::to_slice(message, &mut buf).unwrap().to_vec()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let seeds = root.join("fuzz/seeds");
    let Labeled { images, labels } = testkit::test_digits(3);

    // Model files: a tiny network of each precision, a truncation (the fuzzer and the
    // regression test also read the committed models in `firmware/models/`).
    let dir = seeds.join("model_file");
    let meta = Metadata {
        dataset: "seed",
        test_accuracy: Some(0.5),
        seed: 1,
        epochs: 2,
        options: "{}",
    };
    let mut tiny: Mlp<4, 3, 2> = Mlp::zeros();
    tiny.init(&mut Rng::new(1));
    let mut buf = vec![0u8; 4096];
    let n = model_file::encode(&tiny, &meta, &mut buf).unwrap();
    write(&dir, "tiny-f32.digits", &buf[..n]);
    write(&dir, "tiny-f32-truncated.digits", &buf[..n / 2]);
    let n = model_file::encode_int8(&QuantMlp::<4, 3, 2>::zeroed(), &meta, &mut buf).unwrap();
    write(&dir, "tiny-int8.digits", &buf[..n]);
    // A compact network: 2x2 input, a 4-bit hidden layer of 3 units, 2 logits from 2-bit codes.
    let unit = |m: u16, shift: u8| [m.to_le_bytes()[0], m.to_le_bytes()[1], shift];
    let rescale: Vec<u8> = (0..3).flat_map(|_| unit(40000, 20)).collect();
    let scales: Vec<u8> = [0.01f32, 0.02]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bias3: Vec<u8> = [5i32, -7, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let bias2: Vec<u8> = [1i32, -1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let compact = Compact {
        side: 2,
        layers: [
            Layer {
                inputs: 4,
                outputs: 3,
                bits: Bits::Four,
                windows: None,
                codes: &[0x12, 0xf0, 0x37, 0x8c, 0x00, 0xff],
                bias: &bias3,
                rescale: &rescale,
            },
            Layer {
                inputs: 3,
                outputs: 2,
                bits: Bits::Two,
                windows: None,
                codes: &[0x1b, 0x24],
                bias: &bias2,
                rescale: &scales,
            },
        ]
        .into_iter()
        .collect(),
    };
    let n = encode_compact(&compact, &meta, &mut buf).unwrap();
    write(&dir, "tiny-compact.digits", &buf[..n]);
    // With convolutions (format version 3): 3x3 input, 2x2 windows every pixel (4 windows) of
    // 1 unit each, 1x1 windows of those with 2 units each, then the 2-bit output layer.
    let bias1: Vec<u8> = 3i32.to_le_bytes().to_vec();
    let bias2: Vec<u8> = [4i32, -2].iter().flat_map(|v| v.to_le_bytes()).collect();
    let windows = |side, channels, kernel| {
        Some(Windows {
            side,
            channels,
            kernel,
            stride: 1,
        })
    };
    let conv = Compact {
        side: 3,
        layers: [
            Layer {
                inputs: 9,
                outputs: 4,
                bits: Bits::Four,
                windows: windows(3, 1, 2),
                codes: &[0x3c, 0xa5],
                bias: &bias1,
                rescale: &rescale[..3],
            },
            Layer {
                inputs: 4,
                outputs: 8,
                bits: Bits::Four,
                windows: windows(2, 1, 1),
                codes: &[0x09, 0x07],
                bias: &bias2,
                rescale: &rescale[..6],
            },
            Layer {
                inputs: 8,
                outputs: 2,
                bits: Bits::Two,
                windows: None,
                codes: &[0x1b, 0xe4, 0x24, 0x42],
                bias: &bias2,
                rescale: &scales,
            },
        ]
        .into_iter()
        .collect(),
    };
    let n = encode_compact(&conv, &meta, &mut buf).unwrap();
    write(&dir, "tiny-conv.digits", &buf[..n]);

    // Requests and responses, framed: one of each kind per file, and all in one stream.
    let (image, label) = (images[0], labels[0]);
    let requests = [
        Request::Ping { nonce: 7 },
        Request::Info,
        Request::Classify { pixels: &image },
        Request::Stats,
        Request::Reset,
        Request::Sample {
            label,
            pixels: &image,
        },
        Request::Train {
            method: Gradient::Backprop,
            learning_rate: 0.02,
            momentum: 0.9,
        },
        Request::Train {
            method: Gradient::Numeric,
            learning_rate: 0.02,
            momentum: 0.0,
        },
        Request::Evaluate { first: 0, count: 2 },
    ];
    let responses = [
        Response::Pong { nonce: 7 },
        Response::Error(DeviceError::NoData),
    ];
    let dir = seeds.join("frames");
    let mut frames = FrameWriter::new();
    let mut all = Vec::new();
    for (k, r) in requests.iter().enumerate() {
        let frame = frames.encode(r).unwrap();
        write(&dir, &format!("request-{k}"), frame);
        all.extend(frame);
    }
    for (k, r) in responses.iter().enumerate() {
        write(&dir, &format!("response-{k}"), frames.encode(r).unwrap());
    }
    write(&dir, "all-requests", &all);

    // The serve target's pieces: each request framed, then a session that fine-tunes.
    let dir = seeds.join("serve");
    for (k, r) in requests.iter().enumerate() {
        write(
            &dir,
            &format!("request-{k}"),
            &tests::fuzz::serve_piece(&postcard_bytes(r)),
        );
    }
    let mut session = Vec::new();
    for k in 0..3 {
        session.extend(tests::fuzz::serve_piece(&postcard_bytes(
            &Request::Sample {
                label: labels[k],
                pixels: &images[k],
            },
        )));
    }
    for r in &requests[6..] {
        session.extend(tests::fuzz::serve_piece(&postcard_bytes(r)));
    }
    write(&dir, "finetune-session", &session);
    // A model update: hello, a compact model pushed in chunks and committed, a classification
    // with it, a rollback, and each update request alone.
    let compact = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware/models/compact.digits"),
    )
    .expect("the shipped compact model");
    let update = [
        Request::Hello {
            protocol: digits_core::protocol::PROTOCOL_VERSION,
        },
        Request::PushBegin {
            len: compact.len() as u32,
        },
        Request::PushChunk {
            offset: 0,
            bytes: &compact[..960],
        },
        Request::PushCommit,
        Request::Rollback,
    ];
    for (k, r) in update.iter().enumerate() {
        write(
            &dir,
            &format!("update-{k}"),
            &tests::fuzz::serve_piece(&postcard_bytes(r)),
        );
    }
    let mut push = Vec::new();
    for r in &update[..2] {
        push.extend(tests::fuzz::serve_piece(&postcard_bytes(r)));
    }
    for (k, bytes) in compact.chunks(960).enumerate() {
        let chunk = Request::PushChunk {
            offset: (k * 960) as u32,
            bytes,
        };
        push.extend(tests::fuzz::serve_piece(&postcard_bytes(&chunk)));
    }
    for r in [&update[3], &requests[2], &update[4], &requests[2]] {
        push.extend(tests::fuzz::serve_piece(&postcard_bytes(r)));
    }
    write(&dir, "push-session", &push);

    // IDX files: three images and their labels, raw and gzipped.
    let dir = seeds.join("idx");
    let mut idx3 = vec![0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28];
    idx3.extend(images[..3].as_flattened());
    let mut idx1 = vec![0, 0, 8, 1, 0, 0, 0, 3];
    idx1.extend(&labels[..3]);
    write(&dir, "images-idx3-ubyte", &idx3);
    write(&dir, "images-idx3-ubyte.gz", &gzip(&idx3));
    write(&dir, "labels-idx1-ubyte", &idx1);
    write(&dir, "labels-idx1-ubyte.gz", &gzip(&idx1));

    // Pictures: an MNIST digit as dark ink on white, at 28x28 and at 84x84, PNG and JPEG.
    let dir = seeds.join("picture");
    let ink = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([255 - images[1][(y * 28 + x) as usize]])
    });
    let big = image::imageops::resize(&ink, 84, 84, image::imageops::FilterType::Triangle);
    for (name, img) in [("digit-28", &ink), ("digit-84", &big)] {
        for (ext, format) in [
            ("png", image::ImageFormat::Png),
            ("jpg", image::ImageFormat::Jpeg),
        ] {
            let mut bytes = std::io::Cursor::new(Vec::new());
            img.write_to(&mut bytes, format).unwrap();
            write(&dir, &format!("{name}.{ext}"), bytes.get_ref());
        }
    }
    println!("seeds written to {}", seeds.display());
}
