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
use digits_core::blob::IMAGE_LEN;
use digits_core::digest::{Fnv64, output_digest};
use digits_core::finetune::{Gradient, MnistTuner};
use digits_core::frame::{self, Feed, FrameError, FrameReader, MAX_FRAME};
use digits_core::pixels::normalize;
use digits_core::protocol::{
    self, Classification, DeviceError, DeviceInfo, Evaluation, IMAGE_BYTES, ModelSummary,
    PROTOCOL_VERSION, Request, Response, Stats, Trained, Tuning,
};
use digits_core::softmax::argmax;
use digits_core::update::{Flash, Slots};
use digits_core::{Mlp, Sgd};

use crate::eval::{Source, Stopwatch};
use crate::running::Running;

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
    /// Fine-tuning started over from the flash weights.
    Reset,
    /// A sample cached for the next step.
    Sampled {
        /// Samples now waiting.
        batch: u32,
    },
    /// A training step taken.
    Trained {
        /// Samples in the step.
        samples: u32,
        /// Mean loss of the batch before the step.
        loss: f32,
    },
    /// A range of the data blob classified.
    Evaluated {
        /// Images classified.
        images: u32,
        /// Correct predictions, if the blob has labels.
        correct: Option<u32>,
    },
    /// A host said hello with the same protocol version.
    Hello,
    /// A push begun into `slot`.
    PushBegun {
        /// The slot being written.
        slot: u8,
        /// Bytes announced.
        len: u32,
    },
    /// A push chunk written.
    Pushed {
        /// Bytes received so far.
        received: u32,
    },
    /// A pushed model committed: it runs now.
    Committed {
        /// Its slot.
        slot: u8,
        /// Its sequence number.
        seq: u32,
    },
    /// Back to the model of `slot`.
    RolledBack {
        /// The slot that runs now.
        slot: u8,
    },
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

/// Counts the instructions of a piece of work with a [`Stopwatch`] whose ticks per
/// instruction were measured (`device::calibrate`).
pub struct Meter<S: Stopwatch> {
    stopwatch: S,
    /// Ticks for `CALIBRATION_INSTRUCTIONS` instructions; 0: not measured.
    calibration: u32,
    calibration_instructions: u32,
}

impl<S: Stopwatch> Meter<S> {
    /// A meter whose `stopwatch` ticked `calibration` times in `instructions` instructions
    /// (`calibration` 0: every measurement reads 0).
    pub fn new(stopwatch: S, calibration: u32, instructions: u32) -> Self {
        Self {
            stopwatch,
            calibration,
            calibration_instructions: instructions,
        }
    }

    /// Runs `work`, returning its result and the instructions it took.
    fn measure<R>(&mut self, work: impl FnOnce() -> R) -> (R, u64) {
        self.stopwatch.start();
        let result = core::hint::black_box(work());
        let ticks = self.stopwatch.stop() as u64;
        let instructions = match self.calibration {
            0 => 0,
            c => ticks * self.calibration_instructions as u64 / c as u64,
        };
        (result, instructions)
    }
}

/// Serves requests with the model of the running slot, one byte of input at a time,
/// fine-tuning an `f32` model's output layer in a [`MnistTuner`] (in RAM; the model stays in
/// flash), and taking new models into the other slot.
pub struct Server<'m, S: Stopwatch, D: Source, F: Flash> {
    slots: Slots<F>,
    tuner: &'m mut MnistTuner,
    data: Option<D>,
    board: &'static str,
    meter: Meter<S>,
    reader: FrameReader<MAX_FRAME>,
    stats: Stats,
    /// The reply being framed: two buffers of the server's own rather than a `FrameWriter`,
    /// with which the device's stack peak measured higher.
    scratch: [u8; MAX_FRAME],
    out: [u8; MAX_FRAME],
}

impl<'m, S: Stopwatch, D: Source, F: Flash> Server<'m, S, D, F> {
    /// A server for the models in `slots` on `board` (reported by [`Request::Info`]), tuning
    /// in `tuner` (reset to the running model's output layer here), evaluating on the data
    /// blob `data` (in the PSRAM, or a host file read over semihosting; `None`: no blob),
    /// timing with `meter`.
    pub fn new(
        slots: Slots<F>,
        board: &'static str,
        tuner: &'m mut MnistTuner,
        data: Option<D>,
        meter: Meter<S>,
    ) -> Self {
        reset_tuner(tuner, &slots);
        Self {
            slots,
            tuner,
            data,
            board,
            meter,
            reader: FrameReader::new(),
            stats: Stats::default(),
            scratch: [0; MAX_FRAME],
            out: [0; MAX_FRAME],
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The output layer's state: as shipped, or as tuned since the last reset.
    pub fn tuner(&self) -> &MnistTuner {
        self.tuner
    }

    /// The model slots.
    pub fn slots(&self) -> &Slots<F> {
        &self.slots
    }

    /// Takes one byte from the host. When it ends a frame, returns what happened and the reply
    /// to send. `memory` is asked only for an info request.
    pub fn push(&mut self, byte: u8, memory: impl FnOnce() -> Memory) -> Option<Reply<'_>> {
        let payload = match self.reader.push(byte) {
            Feed::Pending => return None,
            Feed::Error(e) => {
                self.stats.bad_frames += 1;
                return Some(Reply {
                    event: Event::Skipped(e),
                    frame: None,
                });
            }
            Feed::Frame(payload) => payload,
        };
        let served = Served {
            slots: &mut self.slots,
            tuner: self.tuner,
            data: self.data.as_mut().map(|d| d as &mut dyn Source),
            board: self.board,
            meter: &mut self.meter,
            stats: &mut self.stats,
        };
        let (event, response) = match protocol::decode_request(payload) {
            Ok(request) => {
                served.stats.requests += 1;
                served.answer(request, memory)
            }
            Err(e) => {
                match e {
                    DeviceError::UnknownRequest { .. } => served.stats.unknown_requests += 1,
                    DeviceError::Frame(_) => served.stats.bad_frames += 1,
                    _ => {}
                }
                (Event::Refused(e), Response::Error(e))
            }
        };
        // Every response fits: the largest, Info, is well under MAX_FRAME (tested).
        let frame = frame::encode(&response, &mut self.scratch, &mut self.out).ok();
        Some(Reply { event, frame })
    }
}

/// Sets `tuner` to the running model's output layer, if it is an `f32` model.
fn reset_tuner<F: Flash>(tuner: &mut MnistTuner, slots: &Slots<F>) {
    if let Some(m) = running(slots).and_then(|r| r.as_f32()) {
        tuner.reset(&m.output);
    }
}

/// The model of the running slot.
pub fn running<F: Flash>(slots: &Slots<F>) -> Option<Running<'_>> {
    Running::of(&slots.active()?.content)
}

/// What answering a request may touch (split from the frame buffers, which the request
/// borrows).
struct Served<'s, S: Stopwatch, F: Flash> {
    slots: &'s mut Slots<F>,
    tuner: &'s mut MnistTuner,
    data: Option<&'s mut dyn Source>,
    board: &'static str,
    meter: &'s mut Meter<S>,
    stats: &'s mut Stats,
}

impl<'s, S: Stopwatch, F: Flash> Served<'s, S, F> {
    fn answer(
        self,
        request: Request<'_>,
        memory: impl FnOnce() -> Memory,
    ) -> (Event, Response<'s>) {
        match request {
            Request::Hello { protocol } if protocol == PROTOCOL_VERSION => (
                Event::Hello,
                Response::Hello {
                    protocol: PROTOCOL_VERSION,
                    firmware: env!("CARGO_PKG_VERSION"),
                },
            ),
            Request::Hello { protocol } => refuse(DeviceError::Version {
                device: PROTOCOL_VERSION,
                host: protocol,
            }),
            Request::PushBegin { len } => match self.slots.begin(len) {
                Ok(p) => (Event::PushBegun { slot: p.slot, len }, Response::Push(p)),
                Err(e) => refuse(DeviceError::Update(e)),
            },
            Request::PushChunk { offset, bytes } => match self.slots.chunk(offset, bytes) {
                Ok(p) => (
                    Event::Pushed {
                        received: p.received,
                    },
                    Response::Push(p),
                ),
                Err(e) => refuse(DeviceError::Update(e)),
            },
            Request::PushCommit => match self.slots.commit() {
                Ok(summary) => {
                    reset_tuner(self.tuner, self.slots);
                    let seq = summary.header.map_or(0, |h| h.seq);
                    (
                        Event::Committed {
                            slot: summary.slot,
                            seq,
                        },
                        Response::Committed(summary),
                    )
                }
                Err(e) => refuse(DeviceError::Update(e)),
            },
            Request::Rollback => match self.slots.rollback() {
                Ok(summary) => {
                    reset_tuner(self.tuner, self.slots);
                    (
                        Event::RolledBack { slot: summary.slot },
                        Response::RolledBack(summary),
                    )
                }
                Err(e) => refuse(DeviceError::Update(e)),
            },
            request => {
                let slots: &'s Slots<F> = self.slots;
                let serving = Serving {
                    slots,
                    tuner: self.tuner,
                    data: self.data,
                    board: self.board,
                    meter: self.meter,
                    stats: self.stats,
                };
                serving.answer(request, memory)
            }
        }
    }
}

/// What answering a request about the running model may touch: the slots only to read.
struct Serving<'s, S: Stopwatch, F: Flash> {
    slots: &'s Slots<F>,
    tuner: &'s mut MnistTuner,
    data: Option<&'s mut dyn Source>,
    board: &'static str,
    meter: &'s mut Meter<S>,
    stats: &'s mut Stats,
}

impl<'s, S: Stopwatch, F: Flash> Serving<'s, S, F> {
    fn answer(
        mut self,
        request: Request<'_>,
        memory: impl FnOnce() -> Memory,
    ) -> (Event, Response<'s>) {
        if let Request::Ping { nonce } = request {
            return (Event::Ping, Response::Pong { nonce });
        }
        if let Request::Stats = request {
            return (Event::Stats, Response::Stats(*self.stats));
        }
        if let Request::Info = request {
            return (
                Event::Info,
                Response::Info(info(self.board, self.slots, memory())),
            );
        }
        let Some(model) = running(self.slots) else {
            return refuse(DeviceError::NoModel);
        };
        match request {
            Request::Classify { pixels } => {
                let Ok(pixels) = <&[u8; IMAGE_BYTES]>::try_from(pixels) else {
                    unreachable!("checked by decode_request")
                };
                let classification = classify_running(&model, self.tuner, pixels);
                self.stats.classified += 1;
                (
                    Event::Classified {
                        digit: classification.digit,
                    },
                    Response::Classified(classification),
                )
            }
            Request::Evaluate { first, count } => self.evaluate(&model, first, count),
            tuning => {
                let Some(f32_model) = model.as_f32() else {
                    return refuse(DeviceError::NeedsF32 { kind: model.kind() });
                };
                self.tune(f32_model, tuning)
            }
        }
    }

    fn tune(mut self, model: &MnistMlp, request: Request<'_>) -> (Event, Response<'s>) {
        match request {
            Request::Reset => {
                self.tuner.reset(&model.output);
                (Event::Reset, Response::Tuning(self.tuning(0)))
            }
            Request::Sample { label, pixels } => {
                let Ok(pixels) = <&[u8; IMAGE_BYTES]>::try_from(pixels) else {
                    unreachable!("checked by decode_request")
                };
                let tuner = &mut *self.tuner;
                let (added, instructions) = self.meter.measure(|| {
                    let mut x = [0.0f32; IMAGE_BYTES];
                    normalize(pixels, &mut x);
                    tuner.add(model, &x, label)
                });
                match added {
                    Ok(batch) => {
                        self.stats.samples += 1;
                        (
                            Event::Sampled {
                                batch: batch as u32,
                            },
                            Response::Tuning(self.tuning(instructions)),
                        )
                    }
                    Err(e) => refuse(DeviceError::Tune(e)),
                }
            }
            Request::Train {
                method,
                learning_rate,
                momentum,
            } => self.train(method, learning_rate, momentum),
            _ => unreachable!("answered by the caller"),
        }
    }

    fn tuning(&self, instructions: u64) -> Tuning {
        Tuning {
            batch: self.tuner.batch_len() as u32,
            steps: self.tuner.steps(),
            instructions,
        }
    }

    fn train(&mut self, method: Gradient, lr: f32, momentum: f32) -> (Event, Response<'s>) {
        let valid = lr.is_finite() && lr > 0.0 && momentum.is_finite();
        if !valid || !(0.0..1.0).contains(&momentum) {
            return refuse(DeviceError::BadHyperparameter);
        }
        let sgd = Sgd {
            momentum: momentum as f64,
            weight_decay: 0.0,
        };
        let tuner = &mut *self.tuner;
        let (stepped, instructions) = self.meter.measure(|| tuner.step(method, &sgd, lr));
        match stepped {
            Ok(step) => {
                self.stats.steps += 1;
                let trained = Trained {
                    samples: step.samples as u32,
                    loss: step.loss,
                    steps: self.tuner.steps(),
                    output_fnv64: output_digest(&self.tuner.output),
                    instructions,
                };
                (
                    Event::Trained {
                        samples: trained.samples,
                        loss: trained.loss,
                    },
                    Response::Trained(trained),
                )
            }
            Err(e) => refuse(DeviceError::Tune(e)),
        }
    }

    fn evaluate(&mut self, model: &Running<'_>, first: u32, count: u32) -> (Event, Response<'s>) {
        let Some(data) = self.data.as_deref_mut() else {
            return refuse(DeviceError::NoData);
        };
        let images = data.header().count;
        let Some(end) = first.checked_add(count).filter(|&end| end <= images) else {
            return refuse(DeviceError::BadRange { images });
        };
        let labeled = data.header().has_labels();
        let mut digest = Fnv64::new();
        let mut correct = 0u32;
        let mut pixels = [0u8; IMAGE_LEN];
        for i in first..end {
            // The blob was checked when it was opened; a file that fails now is gone.
            let Ok(label) = data.read(i as usize, &mut pixels) else {
                return refuse(DeviceError::NoData);
            };
            let c = classify_running(model, self.tuner, &pixels);
            digest.write_f32s(&c.logits);
            correct += (label == Some(c.digit)) as u32;
        }
        let evaluation = Evaluation {
            images: count,
            correct: labeled.then_some(correct),
            logits_fnv64: digest.finish(),
        };
        (
            Event::Evaluated {
                images: count,
                correct: evaluation.correct,
            },
            Response::Evaluated(evaluation),
        )
    }
}

fn refuse<'a>(e: DeviceError) -> (Event, Response<'a>) {
    (Event::Refused(e), Response::Error(e))
}

/// The running model's answer, with the tuned output layer for an `f32` model.
pub fn classify_running(
    model: &Running<'_>,
    tuner: &MnistTuner,
    pixels: &[u8; IMAGE_BYTES],
) -> Classification {
    match model.as_f32() {
        Some(m) => classify_tuned(m, tuner, pixels),
        None => {
            let logits = model.logits(pixels);
            Classification {
                digit: argmax(&logits) as u8,
                logits,
            }
        }
    }
}

/// The answer for one image with `model`'s hidden layer and `tuner`'s output layer: untuned,
/// the same bits as [`classify`].
pub fn classify_tuned(
    model: &Mlp<784, 128, 10, f32>,
    tuner: &MnistTuner,
    pixels: &[u8; IMAGE_BYTES],
) -> Classification {
    let mut x = [0.0f32; IMAGE_BYTES];
    normalize(pixels, &mut x);
    let logits = tuner.logits(model, &x);
    Classification {
        digit: argmax(&logits) as u8,
        logits,
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

/// This firmware's [`DeviceInfo`]: the running model (from its slot), both slots, `memory`.
pub fn info<'a, F: Flash>(board: &'a str, slots: &'a Slots<F>, memory: Memory) -> DeviceInfo<'a> {
    let model = slots.active().and_then(|active| {
        let model = Running::of(&active.content)?;
        let mut description = heapless::String::new();
        // A description longer than the field is cut short rather than refused.
        let _ = model.describe(&mut description);
        let meta = active.content.metadata();
        Some(ModelSummary {
            kind: model.kind(),
            description,
            dataset: meta.dataset,
            test_accuracy: meta.test_accuracy,
            params_fnv64: model.digest(),
            file_len: active.header.file_len,
            file_crc: active.header.file_crc,
        })
    });
    DeviceInfo {
        protocol: PROTOCOL_VERSION,
        firmware: env!("CARGO_PKG_VERSION"),
        board,
        model,
        slots: slots.summary(),
        slot_capacity: slots.capacity(),
        flash_bytes: memory.flash_bytes,
        static_ram_bytes: memory.static_ram_bytes,
        stack_bytes: memory.stack_bytes,
        stack_peak_bytes: memory.stack_peak_bytes,
    }
}
