//! The device's request handling (`firmware::serve`) run on the host, byte by byte, without
//! QEMU: every kind of frame gets the reply (or the silence) documented there. The fine-tuning
//! runs on real MNIST test digits (testkit's committed slice where the full set is not here).

mod common;

use common::eval::blob;
use digits_core::blob::Blob;
use digits_core::finetune::{Gradient, MnistTuner, TuneError};
use digits_core::frame::{self, Feed, FrameError, FrameReader, FrameWriter, MAX_FRAME};
use digits_core::pixels::normalize;
use digits_core::protocol::{DeviceError, MAX_BATCH, Request, Response};
use digits_core::softmax::argmax;
use digits_core::update::{RamFlash, Slots};
use digits_core::{Params, Sgd};
use firmware::eval::NoStopwatch;
use firmware::model::MODEL;
use firmware::serve::{Event, Memory, Meter, Server};
use firmware::slots::{GEOMETRY, SLOTS, factory_area};
use testkit::Labeled;

type HostServer<'m> = Server<'m, NoStopwatch, Blob<'m>, RamFlash<'m>>;

/// A server on the host with the factory model in slot A of `area` (from
/// [`firmware::slots::factory_area`]), tuning in `tuner`, with `data` as its PSRAM.
fn server<'m>(
    board: &'static str,
    tuner: &'m mut MnistTuner,
    area: &'m mut [u8],
    data: &'m [u8],
) -> HostServer<'m> {
    let blob = Blob::parse(data).ok();
    let slots = Slots::new(RamFlash::new(area, GEOMETRY), SLOTS);
    Server::new(slots, board, tuner, blob, Meter::new(NoStopwatch, 0, 0))
}

fn decode(payload: &[u8]) -> Response<'_> {
    frame::decode(payload).expect("a valid response")
}

/// Feeds `bytes` to `server`; returns the events and the replies' payloads.
fn feed(server: &mut HostServer<'_>, bytes: &[u8]) -> (Vec<Event>, Vec<Vec<u8>>) {
    let memory = || Memory {
        flash_bytes: u32::MAX,
        static_ram_bytes: u32::MAX,
        stack_bytes: u32::MAX,
        stack_peak_bytes: u32::MAX,
    };
    let (mut events, mut replies) = (Vec::new(), Vec::new());
    for &b in bytes {
        if let Some(reply) = server.push(b, memory) {
            events.push(reply.event);
            if let Some(frame) = reply.frame {
                // Decode the reply the way the host does.
                let mut reader = FrameReader::<MAX_FRAME>::new();
                let mut payload = None;
                for &c in frame {
                    if let Feed::Frame(p) = reader.push(c) {
                        payload = Some(p.to_vec());
                    }
                }
                replies.push(payload.expect("a reply is one intact frame"));
            }
        }
    }
    (events, replies)
}

#[test]
fn every_request_gets_its_answer_and_damage_gets_silence() {
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = factory_area();
    let mut server = server("test-board", &mut tuner, &mut area, &[]);
    let mut frames = FrameWriter::new();
    let mut bytes = frames.encode(&Request::Ping { nonce: 7 }).unwrap().to_vec();
    bytes.extend(frames.encode(&Request::Info).unwrap());
    bytes.extend(
        frames
            .encode(&Request::Classify {
                pixels: &firmware::DIGIT_7,
            })
            .unwrap(),
    );
    bytes.extend([1, 2, 3, 0]); // noise: not COBS-valid with a checksum
    bytes.extend(vec![0x41; 2 * MAX_FRAME]); // oversized
    bytes.push(0);
    bytes.extend(frames.encode(&200u8).unwrap()); // unknown request
    bytes.extend(frames.encode(&Request::Stats).unwrap());
    let (events, replies) = feed(&mut server, &bytes);

    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(events[0], Event::Ping);
    assert_eq!(events[1], Event::Info);
    assert_eq!(events[2], Event::Classified { digit: 7 });
    assert!(matches!(events[3], Event::Skipped(_)), "{:?}", events[3]);
    assert_eq!(events[4], Event::Skipped(FrameError::Oversized));
    // 200 is a two-byte varint: not a small unknown tag, a malformed message.
    assert_eq!(
        events[5],
        Event::Refused(DeviceError::Frame(FrameError::Malformed))
    );
    assert_eq!(events[6], Event::Stats);

    assert_eq!(replies.len(), 5, "no reply to the two damaged frames");
    assert_eq!(decode(&replies[0]), Response::Pong { nonce: 7 });
    match decode(&replies[1]) {
        Response::Info(info) => {
            assert_eq!(info.board, "test-board");
            assert_eq!(info.flash_bytes, u32::MAX);
            let model = info.model.expect("the factory model runs");
            assert_eq!(
                model.params_fnv64,
                digits_core::digest::params_digest(&MODEL)
            );
            assert_eq!(model.description, "784-128-10 f32");
            assert_eq!(info.slots[0].state, digits_core::update::State::Valid);
            assert!(info.slots[0].active);
        }
        other => panic!("{other:?}"),
    }
    match decode(&replies[2]) {
        Response::Classified(c) => {
            assert_eq!(c, firmware::serve::classify(&MODEL, &firmware::DIGIT_7))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(decode(&replies[3]), Response::Error(_)));
    match decode(&replies[4]) {
        Response::Stats(s) => {
            assert_eq!((s.requests, s.classified, s.bad_frames), (4, 1, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_largest_reply_fits_a_frame() {
    // Info with every number at its widest (varints) and the longest board name we use.
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = factory_area();
    let mut server = server(
        "a-board-name-as-long-as-any-real-one-would-be",
        &mut tuner,
        &mut area,
        &[],
    );
    let mut frames = FrameWriter::new();
    let (_, replies) = feed(&mut server, frames.encode(&Request::Info).unwrap());
    assert_eq!(replies.len(), 1, "the Info reply was not framed");
    assert!(
        replies[0].len() < MAX_FRAME / 2,
        "{} bytes",
        replies[0].len()
    );
}

/// FNV-1a over a layer's parameters, written out here rather than taken from the firmware.
fn layer_fnv(layer: &digits_core::Dense<128, 10, f32>) -> u64 {
    let mut h = common::mnist::FNV_START;
    for k in 0..layer.tensor_count() {
        for v in layer.tensor(k).data {
            common::mnist::fnv1a(&mut h, &v.to_bits().to_le_bytes());
        }
    }
    h
}

fn one(server: &mut HostServer<'_>, request: &Request<'_>) -> (Event, Response<'static>) {
    let (mut events, replies) = feed(server, FrameWriter::new().encode(request).unwrap());
    assert_eq!((events.len(), replies.len()), (1, 1), "{events:?}");
    let response = decode(&replies[0]);
    // Own the response: the tuning replies borrow nothing.
    let response: Response<'static> = match response {
        Response::Tuning(t) => Response::Tuning(t),
        Response::Trained(t) => Response::Trained(t),
        Response::Evaluated(e) => Response::Evaluated(e),
        Response::Classified(c) => Response::Classified(c),
        Response::Error(e) => Response::Error(e),
        Response::Stats(s) => Response::Stats(s),
        other => panic!("unexpected {other:?}"),
    };
    (events.remove(0), response)
}

/// Fine-tuning over the protocol: samples, steps by both methods and evaluations on a data
/// blob give what the same core code gives on the host, bit for bit; a reset brings back the
/// flash weights.
#[test]
fn fine_tuning_matches_the_host_and_resets() {
    let Labeled { images, labels } = testkit::test_digits(200);
    let data = blob(&images, Some(&labels));
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = factory_area();
    let mut device = server("test-board", &mut tuner, &mut area, &data);

    let mut host = Box::new(MnistTuner::zeroed());
    host.reset(&MODEL.output);
    let shipped = layer_fnv(&MODEL.output);
    let host_eval = |host: &MnistTuner| {
        let mut h = common::mnist::FNV_START;
        let mut correct = 0;
        for (im, &y) in images[100..200].iter().zip(&labels[100..200]) {
            let mut x = [0.0f32; 784];
            normalize(im, &mut x);
            let z = host.logits(&MODEL, &x);
            for v in z {
                common::mnist::fnv1a(&mut h, &v.to_bits().to_le_bytes());
            }
            correct += (argmax(&z) == y as usize) as u32;
        }
        (Some(correct), h)
    };

    let evaluate = Request::Evaluate {
        first: 100,
        count: 100,
    };
    let before = match one(&mut device, &evaluate).1 {
        Response::Evaluated(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!((before.correct, before.logits_fnv64), host_eval(&host));

    let mut worst_loss = 0.0f32;
    for (step, method) in [Gradient::Backprop, Gradient::Numeric, Gradient::Backprop]
        .into_iter()
        .enumerate()
    {
        let batch = 20 + step * 6; // 20, 26, 32 samples
        let start = step * 32;
        for i in start..start + batch {
            let request = Request::Sample {
                label: labels[i],
                pixels: &images[i],
            };
            let (event, response) = one(&mut device, &request);
            assert_eq!(
                event,
                Event::Sampled {
                    batch: (i - start + 1) as u32
                }
            );
            assert!(matches!(response, Response::Tuning(t) if t.batch as usize == i - start + 1));
            let mut x = [0.0f32; 784];
            normalize(&images[i], &mut x);
            host.add(&MODEL, &x, labels[i]).unwrap();
        }
        let sgd = Sgd {
            momentum: 0.9,
            weight_decay: 0.0,
        };
        let expected = host.step(method, &sgd, 0.05).unwrap();
        let train = Request::Train {
            method,
            learning_rate: 0.05,
            momentum: 0.9,
        };
        match one(&mut device, &train).1 {
            Response::Trained(t) => {
                assert_eq!(t.samples as usize, batch);
                assert_eq!(t.steps, step as u32 + 1);
                assert_eq!(t.loss.to_bits(), expected.loss.to_bits(), "{method:?}");
                assert_eq!(
                    t.output_fnv64,
                    layer_fnv(&host.output),
                    "{method:?} step {step}"
                );
                assert_ne!(t.output_fnv64, shipped);
                worst_loss = worst_loss.max(t.loss);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(device.tuner().output, host.output);
    let after = match one(&mut device, &evaluate).1 {
        Response::Evaluated(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!((after.correct, after.logits_fnv64), host_eval(&host));
    assert_ne!(
        after.logits_fnv64, before.logits_fnv64,
        "the tuned layer classifies"
    );

    // Classify uses the tuned layer too.
    let (_, response) = one(
        &mut device,
        &Request::Classify {
            pixels: &images[150],
        },
    );
    let mut x = [0.0f32; 784];
    normalize(&images[150], &mut x);
    assert!(matches!(response, Response::Classified(c) if c.logits == host.logits(&MODEL, &x)));

    // Reset: the flash weights again, as a fresh device classifies.
    let (event, response) = one(&mut device, &Request::Reset);
    assert_eq!(event, Event::Reset);
    assert!(matches!(response, Response::Tuning(t) if t.batch == 0 && t.steps == 0));
    assert_eq!(layer_fnv(&device.tuner().output), shipped);
    let again = match one(&mut device, &evaluate).1 {
        Response::Evaluated(e) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(again, before);
    match one(&mut device, &Request::Stats).1 {
        Response::Stats(s) => assert_eq!((s.samples, s.steps), (20 + 26 + 32, 3)),
        other => panic!("{other:?}"),
    }
}

/// Every bad fine-tuning request gets its error and changes nothing.
#[test]
fn bad_fine_tuning_requests_are_refused() {
    let images: Vec<[u8; 784]> = vec![firmware::DIGIT_7, firmware::DIGIT_1];
    let data = blob(&images, Some(&[7, 1]));
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = factory_area();
    let mut device = server("test-board", &mut tuner, &mut area, &data);
    let refused = |device: &mut HostServer<'_>, request: &Request<'_>| match one(device, request) {
        (Event::Refused(e), Response::Error(r)) if e == r => e,
        other => panic!("{request:?}: {other:?}"),
    };
    let train = |learning_rate, momentum| Request::Train {
        method: Gradient::Backprop,
        learning_rate,
        momentum,
    };
    assert_eq!(
        refused(&mut device, &train(0.1, 0.9)),
        DeviceError::Tune(TuneError::EmptyBatch)
    );
    let seven = Request::Sample {
        label: 7,
        pixels: &firmware::DIGIT_7,
    };
    assert_eq!(
        refused(
            &mut device,
            &Request::Sample {
                label: 10,
                pixels: &firmware::DIGIT_7
            }
        ),
        DeviceError::Tune(TuneError::BadLabel)
    );
    assert_eq!(
        refused(
            &mut device,
            &Request::Sample {
                label: 7,
                pixels: &firmware::DIGIT_7[..700]
            }
        ),
        DeviceError::BadImageLength { got: 700 }
    );
    for _ in 0..MAX_BATCH {
        assert!(matches!(one(&mut device, &seven).1, Response::Tuning(_)));
    }
    assert_eq!(
        refused(&mut device, &seven),
        DeviceError::Tune(TuneError::BatchFull)
    );
    for (lr, momentum) in [
        (f32::NAN, 0.9),
        (0.1, f32::NAN),
        (-0.1, 0.0),
        (0.1, 1.0),
        (f32::INFINITY, 0.0),
    ] {
        assert_eq!(
            refused(&mut device, &train(lr, momentum)),
            DeviceError::BadHyperparameter
        );
    }
    let shipped = layer_fnv(&MODEL.output);
    assert_eq!(
        layer_fnv(&device.tuner().output),
        shipped,
        "nothing changed"
    );
    assert_eq!(device.tuner().batch_len(), MAX_BATCH, "the batch stays");
    assert!(
        matches!(one(&mut device, &train(0.1, 0.0)).1, Response::Trained(t) if t.samples == 32)
    );

    for (first, count) in [(0, 3), (2, 1), (u32::MAX, 2)] {
        assert_eq!(
            refused(&mut device, &Request::Evaluate { first, count }),
            DeviceError::BadRange { images: 2 }
        );
    }
    match one(&mut device, &Request::Evaluate { first: 0, count: 2 }).1 {
        Response::Evaluated(e) => assert_eq!((e.images, e.correct), (2, Some(2))),
        other => panic!("{other:?}"),
    }
    let mut tuner = Box::new(MnistTuner::zeroed());
    let mut area = factory_area();
    let mut bare = server("test-board", &mut tuner, &mut area, &[0; 64]);
    assert_eq!(
        refused(&mut bare, &Request::Evaluate { first: 0, count: 1 }),
        DeviceError::NoData
    );
}
