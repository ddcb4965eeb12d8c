//! The device's side of the protocol: bytes from the UART in, reply frames out.
//!
//! [`Server`] is plain logic over fixed buffers, so it runs (and is tested) on the host as it
//! runs on the device; the `serve` binary only moves bytes between it and the UART and logs
//! its [`Event`]s with defmt.
//!
//! What gets a reply:
//! - every intact request: its answer, or [`Response::Error`] for an unknown request, an image
//!   of the wrong size, or a message that does not decode although its checksum matches;
//! - nothing for a damaged frame (garbage between frames, bad COBS, bad checksum, oversized):
//!   there is no telling whom it came from or what it asked, so it is counted in
//!   [`Stats::bad_frames`] and skipped, and the reader resynchronizes at the next `0x00`. A
//!   host that gets no reply in time knows its request was lost.

use digits_core::MnistMlp;
use digits_core::frame::{self, Feed, FrameError, FrameReader, MAX_FRAME};
use digits_core::input::normalize;
use digits_core::model_file::{Architecture, Precision};
use digits_core::protocol::{
    self, Classification, DeviceError, DeviceInfo, IMAGE_BYTES, ModelSummary, PROTOCOL_VERSION,
    Request, Response, Stats,
};
use digits_core::softmax::argmax;

use crate::model as embedded;

/// Memory figures of the running firmware, for [`Request::Info`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Flash used by code and constants (.text + .rodata + .data's initial values), bytes.
    pub flash_bytes: u32,
    /// Static RAM (.data + .bss), bytes.
    pub static_ram_bytes: u32,
    /// RAM left for the stack, bytes.
    pub stack_bytes: u32,
    /// Deepest stack use so far (painted stack), bytes.
    pub stack_peak_bytes: u32,
}

/// What the last frame was, for the log.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// A ping, answered.
    Ping,
    /// An info request, answered.
    Info,
    /// An image, classified as `digit`.
    Classified {
        /// The predicted digit.
        digit: u8,
    },
    /// A statistics request, answered.
    Stats,
    /// A damaged frame, skipped without reply.
    Skipped(FrameError),
    /// An intact frame with a request that cannot be served; answered with this error.
    Refused(DeviceError),
}

/// A reply to send, and what caused it.
#[derive(Debug, PartialEq)]
pub struct Reply<'a> {
    /// What the frame was.
    pub event: Event,
    /// The frame to send back (delimiter included), if any.
    pub frame: Option<&'a [u8]>,
}

/// Serves requests with `model`, one byte of input at a time.
pub struct Server<'m> {
    model: &'m MnistMlp,
    board: &'static str,
    reader: FrameReader<MAX_FRAME>,
    stats: Stats,
    scratch: [u8; MAX_FRAME],
    out: [u8; MAX_FRAME],
}

impl<'m> Server<'m> {
    /// A server for `model` on `board` (reported by [`Request::Info`]).
    pub const fn new(model: &'m MnistMlp, board: &'static str) -> Self {
        Self {
            model,
            board,
            reader: FrameReader::new(),
            stats: Stats {
                requests: 0,
                classified: 0,
                bad_frames: 0,
                unknown_requests: 0,
            },
            scratch: [0; MAX_FRAME],
            out: [0; MAX_FRAME],
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Takes one byte from the host. When it ends a frame, returns what happened and the reply
    /// to send. `memory` is asked only for an info request.
    pub fn push(&mut self, byte: u8, memory: impl FnOnce() -> Memory) -> Option<Reply<'_>> {
        let Self {
            model,
            board,
            reader,
            stats,
            scratch,
            out,
        } = self;
        let payload = match reader.push(byte) {
            Feed::Pending => return None,
            Feed::Error(e) => {
                stats.bad_frames += 1;
                return Some(Reply {
                    event: Event::Skipped(e),
                    frame: None,
                });
            }
            Feed::Frame(payload) => payload,
        };
        let (event, response) = match protocol::decode_request(payload) {
            Ok(request) => {
                stats.requests += 1;
                answer(model, board, stats, request, memory)
            }
            Err(e) => {
                match e {
                    DeviceError::UnknownRequest { .. } => stats.unknown_requests += 1,
                    DeviceError::Frame(_) => stats.bad_frames += 1,
                    DeviceError::BadImageLength { .. } => {}
                }
                (Event::Refused(e), Response::Error(e))
            }
        };
        // Every response fits: the largest, Info, is well under MAX_FRAME (tested).
        let frame = frame::encode(&response, scratch, out).ok();
        Some(Reply { event, frame })
    }
}

fn answer<'a>(
    model: &MnistMlp,
    board: &'a str,
    stats: &mut Stats,
    request: Request<'_>,
    memory: impl FnOnce() -> Memory,
) -> (Event, Response<'a>) {
    match request {
        Request::Ping { nonce } => (Event::Ping, Response::Pong { nonce }),
        Request::Info => (Event::Info, Response::Info(info(board, model, memory()))),
        Request::Classify { pixels } => {
            let pixels: &[u8; IMAGE_BYTES] = pixels.try_into().expect("checked by decode_request");
            let classification = classify(model, pixels);
            stats.classified += 1;
            (
                Event::Classified {
                    digit: classification.digit,
                },
                Response::Classified(classification),
            )
        }
        Request::Stats => (Event::Stats, Response::Stats(*stats)),
    }
}

/// The model's answer for one image: the same `normalize` + `logits` as on the host.
pub fn classify(model: &MnistMlp, pixels: &[u8; IMAGE_BYTES]) -> Classification {
    let mut x = [0.0f32; IMAGE_BYTES];
    normalize(pixels, &mut x);
    let logits = model.logits(&x);
    Classification {
        digit: argmax(&logits) as u8,
        logits,
    }
}

/// This firmware's [`DeviceInfo`], serving `model` (its metadata is the embedded model's).
pub fn info<'a>(board: &'a str, model: &MnistMlp, memory: Memory) -> DeviceInfo<'a> {
    DeviceInfo {
        protocol: PROTOCOL_VERSION,
        firmware: env!("CARGO_PKG_VERSION"),
        board,
        model: ModelSummary {
            architecture: Architecture {
                input: 784,
                hidden: 128,
                output: 10,
            },
            precision: Precision::F32,
            dataset: embedded::DATASET,
            test_accuracy: embedded::TEST_ACCURACY,
            params_fnv64: embedded::params_digest(model),
        },
        flash_bytes: memory.flash_bytes,
        static_ram_bytes: memory.static_ram_bytes,
        stack_bytes: memory.stack_bytes,
        stack_peak_bytes: memory.stack_peak_bytes,
    }
}
