//! The device's request handling (`firmware::serve`) run on the host, byte by byte, without
//! QEMU: every kind of frame gets the reply (or the silence) documented there.

use digits_core::frame::{self, Feed, FrameError, FrameReader, MAX_FRAME};
use digits_core::protocol::{DeviceError, Request, Response};
use firmware::model::MODEL;
use firmware::serve::{Event, Memory, Server};

fn decode(payload: &[u8]) -> Response<'_> {
    frame::decode(payload).expect("a valid response")
}

fn frame_of<T: serde::Serialize>(message: &T) -> Vec<u8> {
    let mut scratch = [0u8; MAX_FRAME];
    let mut out = [0u8; MAX_FRAME];
    frame::encode(message, &mut scratch, &mut out)
        .expect("fits")
        .to_vec()
}

/// Feeds `bytes` to `server`; returns the events and the replies' payloads.
fn feed(server: &mut Server<'_>, bytes: &[u8]) -> (Vec<Event>, Vec<Vec<u8>>) {
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
    let mut server = Server::new(&MODEL, "test-board");
    let mut bytes = frame_of(&Request::Ping { nonce: 7 });
    bytes.extend(frame_of(&Request::Info));
    bytes.extend(frame_of(&Request::Classify {
        pixels: &firmware::DIGIT_7,
    }));
    bytes.extend([1, 2, 3, 0]); // noise: not COBS-valid with a checksum
    bytes.extend(vec![0x41; 2 * MAX_FRAME]); // oversized
    bytes.push(0);
    bytes.extend(frame_of(&200u8)); // unknown request
    bytes.extend(frame_of(&Request::Stats));
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
            assert_eq!(
                info.model.params_fnv64,
                firmware::model::params_digest(&MODEL)
            );
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
    let mut server = Server::new(&MODEL, "a-board-name-as-long-as-any-real-one-would-be");
    let (_, replies) = feed(&mut server, &frame_of(&Request::Info));
    assert_eq!(replies.len(), 1, "the Info reply was not framed");
    assert!(
        replies[0].len() < MAX_FRAME / 2,
        "{} bytes",
        replies[0].len()
    );
}
