//! Frames and messages: round trips, exact bytes, and a reader that survives anything.

use digits_core::finetune::{Gradient, TuneError};
use digits_core::frame::{
    Feed, FrameError, FrameReader, FrameWriter, MAX_FRAME, decode, encode, encode_payload,
};
use digits_core::model_file::{Architecture, ModelFileError};
use digits_core::protocol::{
    Classification, DeviceError, DeviceInfo, Evaluation, IMAGE_BYTES, MAX_CHUNK, ModelSummary,
    Request, Response, Stats, Trained, Tuning, decode_request,
};
use digits_core::update::{Header, Kind, Progress, SlotSummary, State, UpdateError};
use proptest::prelude::*;

/// Feeds a stream; returns every outcome that is not `Pending`, payloads copied out.
fn feed_all(reader: &mut FrameReader<MAX_FRAME>, bytes: &[u8]) -> Vec<Result<Vec<u8>, FrameError>> {
    let mut out = Vec::new();
    for &b in bytes {
        match reader.push(b) {
            Feed::Pending => {}
            Feed::Frame(p) => out.push(Ok(p.to_vec())),
            Feed::Error(e) => out.push(Err(e)),
        }
    }
    out
}

#[test]
fn ping_frame_has_these_exact_bytes() {
    // postcard: variant 0, varint 0x12345678 = 0xf8 0xac 0xd1 0x91 0x01; then CRC-32; COBS; 0.
    let mut frames = FrameWriter::new();
    let frame = frames
        .encode(&Request::Ping { nonce: 0x1234_5678 })
        .unwrap();
    assert_eq!(frame.last(), Some(&0));
    assert!(
        !frame[..frame.len() - 1].contains(&0),
        "COBS leaves no zero inside"
    );
    let mut reader = FrameReader::<MAX_FRAME>::new();
    let got = feed_all(&mut reader, frame);
    assert_eq!(got.len(), 1);
    let payload = got[0].clone().unwrap();
    assert_eq!(payload, [0x00, 0xf8, 0xac, 0xd1, 0x91, 0x01]);
}

#[test]
fn every_message_round_trips() {
    let pixels = [7u8; IMAGE_BYTES];
    let requests = [
        Request::Ping { nonce: 9 },
        Request::Info,
        Request::Classify { pixels: &pixels },
        Request::Stats,
        Request::Reset,
        Request::Sample {
            label: 9,
            pixels: &pixels,
        },
        Request::Train {
            method: Gradient::Numeric,
            learning_rate: 0.02,
            momentum: 0.9,
        },
        Request::Evaluate {
            first: 10_000,
            count: u32::MAX,
        },
        Request::Hello { protocol: 4 },
        Request::PushBegin { len: 407_469 },
        Request::PushChunk {
            offset: 960,
            bytes: &pixels[..MAX_CHUNK.min(IMAGE_BYTES)],
        },
        Request::PushCommit,
        Request::Rollback,
    ];
    let mut reader = FrameReader::<MAX_FRAME>::new();
    let mut frames = FrameWriter::new();
    for r in &requests {
        let got = feed_all(&mut reader, frames.encode(r).unwrap());
        let payload = got[0].clone().unwrap();
        assert_eq!(&decode_request(&payload).unwrap(), r);
    }
    let responses = [
        Response::Pong { nonce: 1 },
        Response::Classified(Classification {
            digit: 3,
            logits: [
                1.5,
                -2.0,
                f32::MIN_POSITIVE,
                0.0,
                -0.0,
                1e30,
                3.0,
                4.0,
                5.0,
                6.0,
            ],
        }),
        Response::Stats(Stats {
            requests: 5,
            classified: 4,
            bad_frames: 2,
            unknown_requests: 1,
            samples: 100,
            steps: 40,
        }),
        Response::Tuning(Tuning {
            batch: 32,
            steps: 7,
            instructions: u64::MAX,
        }),
        Response::Trained(Trained {
            samples: 25,
            loss: 0.625,
            steps: 40,
            output_fnv64: 0x0123_4567_89ab_cdef,
            instructions: 1 << 40,
        }),
        Response::Evaluated(Evaluation {
            images: 10_000,
            correct: Some(8_335),
            logits_fnv64: u64::MAX,
        }),
        Response::Error(DeviceError::Frame(FrameError::Checksum)),
        Response::Error(DeviceError::Tune(TuneError::BatchFull)),
        Response::Error(DeviceError::BadRange { images: 20_000 }),
        Response::Error(DeviceError::NoData),
        Response::Error(DeviceError::BadHyperparameter),
        Response::Hello {
            protocol: 4,
            firmware: "0.1.0",
        },
        Response::Push(Progress {
            slot: 1,
            received: 960,
            len: 407_469,
        }),
        Response::Committed(slot_summary(1)),
        Response::RolledBack(slot_summary(0)),
        Response::Error(DeviceError::Version { device: 4, host: 5 }),
        Response::Error(DeviceError::Update(UpdateError::Offset {
            expected: 960,
            got: 0,
        })),
        Response::Error(DeviceError::Update(UpdateError::Model(
            ModelFileError::WrongArchitecture {
                found: Architecture {
                    input: 784,
                    hidden: 32,
                    output: 2,
                },
                expected: Architecture {
                    input: 784,
                    hidden: 128,
                    output: 10,
                },
            },
        ))),
        Response::Error(DeviceError::NoModel),
        Response::Error(DeviceError::NeedsF32 { kind: Kind::Int8 }),
        Response::Error(DeviceError::BadChunkLength { got: 961 }),
        Response::Info(largest_info()),
    ];
    for r in &responses {
        let got = feed_all(&mut reader, frames.encode(r).unwrap());
        let payload = got[0].clone().unwrap();
        let back: Response<'_> = decode(&payload).unwrap();
        assert_eq!(&back, r);
    }
}

#[test]
fn garbage_corruption_and_oversized_frames_are_reported_and_skipped() {
    let mut frames = FrameWriter::new();
    let good = frames
        .encode(&Request::Ping { nonce: 42 })
        .unwrap()
        .to_vec();
    let mut corrupt = frames
        .encode(&Request::Ping { nonce: 43 })
        .unwrap()
        .to_vec();
    corrupt[2] ^= 0x10;
    let mut stream = b"garbage without zeros\x00".to_vec();
    stream.extend(&good);
    stream.extend(&corrupt);
    stream.extend(std::iter::repeat_n(0x55u8, 3 * MAX_FRAME));
    stream.push(0);
    stream.extend(&good);
    let mut reader = FrameReader::<MAX_FRAME>::new();
    let got = feed_all(&mut reader, &stream);
    assert_eq!(got.len(), 5, "{got:?}");
    assert!(got[0].is_err());
    assert_eq!(
        decode_request(got[1].as_ref().unwrap()),
        Ok(Request::Ping { nonce: 42 })
    );
    assert!(matches!(
        got[2],
        Err(FrameError::Checksum | FrameError::Corrupt)
    ));
    assert_eq!(got[3], Err(FrameError::Oversized));
    assert_eq!(
        decode_request(got[4].as_ref().unwrap()),
        Ok(Request::Ping { nonce: 42 })
    );
}

#[test]
fn unknown_requests_and_wrong_image_sizes_are_told_apart() {
    // A well-formed frame with request tag 14, as a newer host might send.
    let payload = [14u8, 1, 2];
    assert_eq!(
        decode_request(&payload),
        Err(DeviceError::UnknownRequest { tag: 14 })
    );
    // Tag 13, the first past the last request, is unknown too.
    assert_eq!(
        decode_request(&[13u8]),
        Err(DeviceError::UnknownRequest { tag: 13 })
    );
    // A push chunk longer than MAX_CHUNK.
    let long = [0u8; MAX_CHUNK + 1];
    let mut scratch = [0u8; 2 * MAX_FRAME];
    let payload = postcard::to_slice(
        &Request::PushChunk {
            offset: 0,
            bytes: &long,
        },
        &mut scratch,
    )
    .unwrap();
    assert_eq!(
        decode_request(payload),
        Err(DeviceError::BadChunkLength {
            got: MAX_CHUNK as u32 + 1
        })
    );
    let mut frames = FrameWriter::new();
    let f = frames
        .encode(&Request::Sample {
            label: 3,
            pixels: &[1u8; 100],
        })
        .unwrap();
    let mut r = FrameReader::<MAX_FRAME>::new();
    let payload = feed_all(&mut r, f)[0].clone().unwrap();
    assert_eq!(
        decode_request(&payload),
        Err(DeviceError::BadImageLength { got: 100 })
    );
    let short = [1u8; 100];
    let f = frames
        .encode(&Request::Classify { pixels: &short })
        .unwrap();
    let mut r = FrameReader::<MAX_FRAME>::new();
    let payload = feed_all(&mut r, f)[0].clone().unwrap();
    assert_eq!(
        decode_request(&payload),
        Err(DeviceError::BadImageLength { got: 100 })
    );
    assert_eq!(
        decode_request(&[0u8]),
        Err(DeviceError::Frame(FrameError::Malformed))
    );
}

fn slot_summary(slot: u8) -> SlotSummary {
    SlotSummary {
        slot,
        state: State::Valid,
        active: true,
        header: Some(Header {
            seq: u32::MAX,
            file_len: u32::MAX,
            file_crc: u32::MAX,
            envelope_len: u32::MAX,
            kind: Kind::Compact,
            version: 3,
        }),
    }
}

/// The longest `Info` a device can send: every number at its widest, every text at its
/// longest.
fn largest_info() -> DeviceInfo<'static> {
    let mut description = heapless::String::new();
    while description.push('x').is_ok() {}
    DeviceInfo {
        protocol: u16::MAX,
        firmware: "65535.65535.65535",
        board: "netduinoplus2-with-a-long-name",
        model: Some(ModelSummary {
            kind: Kind::Compact,
            description,
            dataset: "fashion-mnist-and-more-text-here",
            test_accuracy: Some(f32::MAX),
            params_fnv64: u64::MAX,
            file_len: u32::MAX,
            file_crc: u32::MAX,
        }),
        slots: [slot_summary(0), slot_summary(1)],
        slot_capacity: u32::MAX,
        flash_bytes: u32::MAX,
        static_ram_bytes: u32::MAX,
        stack_bytes: u32::MAX,
        stack_peak_bytes: u32::MAX,
    }
}

#[test]
fn the_largest_messages_fit_a_frame() {
    let mut scratch = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    // COBS's worst case is bytes without zeros: a chunk of 0xFF at the largest offset.
    let chunk = [0xFFu8; MAX_CHUNK];
    let request = Request::PushChunk {
        offset: u32::MAX,
        bytes: &chunk,
    };
    let n = encode(&request, &mut scratch, &mut out).unwrap().len();
    println!("largest push chunk: {n} of {MAX_FRAME} bytes");
    let info = Response::Info(largest_info());
    let m = encode(&info, &mut scratch, &mut out).unwrap().len();
    println!("largest info: {m} of {MAX_FRAME} bytes");
    assert!(n <= MAX_FRAME && m <= MAX_FRAME);
}

#[test]
fn a_frame_too_large_to_send_is_an_error_not_a_panic() {
    let big = [1u8; 2 * MAX_FRAME];
    let mut scratch = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    assert_eq!(
        encode(&Request::Classify { pixels: &big }, &mut scratch, &mut out),
        Err(FrameError::BufferTooSmall)
    );
}

proptest! {
    /// Any payload framed by `encode_payload` comes out of the reader as it went in (any but
    /// the empty one: no message is empty, and the reader refuses a frame of a bare checksum);
    /// a message's postcard bytes framed that way are the frame `encode` makes.
    #[test]
    fn any_payload_framed_comes_back_whole(payload in prop::collection::vec(any::<u8>(), 1..1000)) {
        let (mut scratch, mut out) = ([0u8; MAX_FRAME], [0u8; MAX_FRAME]);
        let Ok(frame) = encode_payload(&payload, &mut scratch, &mut out) else {
            // Only a payload that cannot fit is refused.
            prop_assert!(payload.len() + 4 + (payload.len() + 4) / 254 + 2 > MAX_FRAME);
            return Ok(());
        };
        let frame = frame.to_vec();
        let got = feed_all(&mut FrameReader::<MAX_FRAME>::new(), &frame);
        prop_assert_eq!(got, vec![Ok(payload.clone())]);
        let ping = Request::Ping { nonce: payload.len() as u32 };
        let mut buf = [0u8; 16];
        let bytes = postcard::to_slice(&ping, &mut buf).unwrap().to_vec();
        let framed = encode_payload(&bytes, &mut scratch, &mut out).unwrap().to_vec();
        let mut frames = FrameWriter::new();
        prop_assert_eq!(framed, frames.encode(&ping).unwrap());
        let empty = encode_payload(&[], &mut scratch, &mut out).unwrap().to_vec();
        let got = feed_all(&mut FrameReader::<MAX_FRAME>::new(), &empty);
        prop_assert_eq!(got, vec![Err(FrameError::Checksum)]);
    }

    #[test]
    fn any_bytes_then_a_frame_recovers(garbage in prop::collection::vec(any::<u8>(), 0..3000)) {
        let mut reader = FrameReader::<MAX_FRAME>::new();
        for payload in feed_all(&mut reader, &garbage).into_iter().flatten() {
            let _ = decode_request(&payload);
            let _ = decode::<Response<'_>>(&payload);
        }
        // After a delimiter, the reader is in sync whatever came before.
        let mut tail = vec![0u8];
        tail.extend(FrameWriter::new().encode(&Request::Ping { nonce: 7 }).unwrap());
        let got = feed_all(&mut reader, &tail);
        let last = got.last().unwrap().clone().unwrap();
        prop_assert_eq!(decode_request(&last), Ok(Request::Ping { nonce: 7 }));
    }
}
