//! The host <-> device messages, shared by both sides. Carried in [`crate::frame`] frames.

use serde::{Deserialize, Serialize};

use crate::finetune::{Gradient, TuneError};
use crate::frame::FrameError;
use crate::update::{Kind, Progress, SlotSummary, UpdateError};

/// Bumped whenever a message changes shape. Version 4: [`Request::Hello`] first, model
/// updates ([`Request::PushBegin`] ...), the running model of any kind and the slots in
/// [`DeviceInfo`].
pub const PROTOCOL_VERSION: u16 = 4;

/// Bytes of model file one [`Request::PushChunk`] carries at most: with its tag, offset, length
/// and the frame's CRC and COBS overhead it stays within [`crate::frame::MAX_FRAME`] (tested).
pub const MAX_CHUNK: usize = 960;

/// Pixels of one image in a [`Request::Classify`] or a [`Request::Sample`].
pub const IMAGE_BYTES: usize = 784;

/// Samples a [`Request::Train`] step takes at most: what the device caches between steps.
pub const MAX_BATCH: usize = 32;

/// What the host asks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Are you there? Echoes `nonce`.
    Ping {
        /// Any number; returned as is.
        nonce: u32,
    },
    /// Firmware, model and memory figures.
    Info,
    /// Classify one 28x28 image of 8-bit pixels (row-major, ink bright).
    Classify {
        /// Exactly [`IMAGE_BYTES`] bytes.
        #[serde(borrow)]
        pixels: &'a [u8],
    },
    /// Counters since boot.
    Stats,
    /// Starts fine-tuning over: the output layer from flash again, momentum zero, no samples.
    /// Fine-tuning never writes the flash.
    Reset,
    /// One labeled image for the next [`Request::Train`] step (at most [`MAX_BATCH`]). A frame
    /// holds one image; a step takes all the samples sent since the last one.
    Sample {
        /// The digit drawn, 0-9.
        label: u8,
        /// Exactly [`IMAGE_BYTES`] bytes, as in [`Request::Classify`].
        #[serde(borrow)]
        pixels: &'a [u8],
    },
    /// One SGD step of the output layer (kept in RAM) on the samples sent since the last step,
    /// then classifications use the tuned layer.
    Train {
        /// Backprop or central differences.
        method: Gradient,
        /// Learning rate of this step.
        learning_rate: f32,
        /// SGD momentum in `[0, 1)`.
        momentum: f32,
    },
    /// Classify images `first..first + count` of the data blob that QEMU loaded into the PSRAM
    /// (see [`crate::blob`]), with the output layer as tuned so far.
    Evaluate {
        /// Index of the first image.
        first: u32,
        /// Number of images.
        count: u32,
    },
    /// The host's protocol version, sent first: a device of another version refuses with
    /// [`DeviceError::Version`], and each side can say which one to update.
    Hello {
        /// The host's [`PROTOCOL_VERSION`].
        protocol: u16,
    },
    /// Starts putting a model file of `len` bytes into the slot that does not run (see
    /// [`crate::update`]); a push under way is dropped.
    PushBegin {
        /// Bytes of the model file.
        len: u32,
    },
    /// The next bytes of the model file being pushed.
    PushChunk {
        /// Where in the file they start: the bytes received so far.
        offset: u32,
        /// At most [`MAX_CHUNK`] bytes.
        #[serde(borrow)]
        bytes: &'a [u8],
    },
    /// Ends the push: the device checks the slot whole and, if it holds the model intact,
    /// commits it and runs it.
    PushCommit,
    /// Runs the model that ran before the last push again, if its slot is valid.
    Rollback,
}

/// Index of the last [`Request`] variant: a frame naming a higher one is an unknown request.
const LAST_REQUEST: u8 = 12;

/// What the device answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response<'a> {
    /// Answer to [`Request::Ping`].
    Pong {
        /// The request's nonce.
        nonce: u32,
    },
    /// Answer to [`Request::Info`].
    #[serde(borrow)]
    Info(DeviceInfo<'a>),
    /// Answer to [`Request::Classify`].
    Classified(Classification),
    /// Answer to [`Request::Stats`].
    Stats(Stats),
    /// Answer to [`Request::Reset`] and [`Request::Sample`].
    Tuning(Tuning),
    /// Answer to [`Request::Train`].
    Trained(Trained),
    /// Answer to [`Request::Evaluate`].
    Evaluated(Evaluation),
    /// The request could not be served; the device carries on. (Its index stays 7 in every
    /// version, so that any host reads a refusal, [`DeviceError::Version`] included.)
    Error(DeviceError),
    /// Answer to [`Request::Hello`]: the same version.
    Hello {
        /// The device's [`PROTOCOL_VERSION`].
        protocol: u16,
        /// Its firmware version.
        firmware: &'a str,
    },
    /// Answer to [`Request::PushBegin`] and [`Request::PushChunk`].
    Push(Progress),
    /// Answer to [`Request::PushCommit`]: the slot that now runs.
    Committed(SlotSummary),
    /// Answer to [`Request::Rollback`]: the slot that now runs.
    RolledBack(SlotSummary),
}

/// The result of classifying one image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The predicted digit (argmax of the logits).
    pub digit: u8,
    /// The logits, bit for bit as computed (compare them with the host's).
    pub logits: [f32; 10],
}

/// Where fine-tuning stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tuning {
    /// Samples waiting for the next step.
    pub batch: u32,
    /// Steps since the last reset.
    pub steps: u32,
    /// Instructions the device spent on the request (a sample: its hidden layer); exact only
    /// under `qemu -icount`, 0 where unmeasured.
    pub instructions: u64,
}

/// What a training step did.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trained {
    /// Samples in the step.
    pub samples: u32,
    /// Mean loss of the batch before the step.
    pub loss: f32,
    /// Steps since the last reset.
    pub steps: u32,
    /// FNV-1a (64-bit) over the bits of the tuned output layer (weights row by row, then
    /// biases), as in [`ModelSummary::params_fnv64`]: the host checks it against its own run.
    pub output_fnv64: u64,
    /// Instructions the step took (gradient and update); exact only under `qemu -icount`.
    pub instructions: u64,
}

/// What classifying a range of the PSRAM's data blob found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Images classified.
    pub images: u32,
    /// Correct predictions, if the blob has labels.
    pub correct: Option<u32>,
    /// FNV-1a over the bits of all logits, image by image, as the `eval` firmware reports.
    pub logits_fnv64: u64,
}

/// The model the device runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary<'a> {
    /// What runs it.
    pub kind: Kind,
    /// Its architecture and precision as `digits inspect` names them: `784-128-10 f32`,
    /// `16x16-56-56-56-10 4-bit`.
    pub description: heapless::String<48>,
    /// Dataset it was trained on.
    pub dataset: &'a str,
    /// Its test accuracy as recorded in the model file.
    pub test_accuracy: Option<f32>,
    /// FNV-1a (64-bit) over the bits of every parameter, tensor by tensor, each `f32` as 4
    /// little-endian bytes: tells the host whether it holds the same model.
    pub params_fnv64: u64,
    /// Bytes of its model file.
    pub file_len: u32,
    /// Its model file's CRC-32.
    pub file_crc: u32,
}

/// Who the device is and what it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo<'a> {
    /// [`PROTOCOL_VERSION`] of the firmware.
    pub protocol: u16,
    /// Firmware version.
    pub firmware: &'a str,
    /// Board name, e.g. "mps2-an386".
    pub board: &'a str,
    /// The running model; `None` if no slot holds a valid one (a push can give it one).
    #[serde(borrow)]
    pub model: Option<ModelSummary<'a>>,
    /// The two model slots, A and B.
    pub slots: [SlotSummary; 2],
    /// Bytes of model file the next push may have at most.
    pub slot_capacity: u32,
    /// Flash used by code and constants (.text + .rodata), bytes.
    pub flash_bytes: u32,
    /// Static RAM (.data + .bss), bytes.
    pub static_ram_bytes: u32,
    /// Stack reserved, bytes.
    pub stack_bytes: u32,
    /// Deepest stack use measured so far (painted stack), bytes.
    pub stack_peak_bytes: u32,
}

/// Counters since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Valid requests served.
    pub requests: u32,
    /// Images classified.
    pub classified: u32,
    /// Frames rejected (corrupt, bad checksum, oversized, malformed).
    pub bad_frames: u32,
    /// Well-formed frames with an unknown request.
    pub unknown_requests: u32,
    /// Fine-tuning samples received.
    pub samples: u32,
    /// Fine-tuning steps taken.
    pub steps: u32,
}

/// Why a request was not served.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceError {
    /// The frame itself was bad.
    Frame(FrameError),
    /// A request this firmware does not know (newer host?).
    UnknownRequest {
        /// The variant index received.
        tag: u8,
    },
    /// An image of the wrong size.
    BadImageLength {
        /// Bytes received.
        got: u32,
    },
    /// A sample or a step was refused; the tuned layer is unchanged.
    Tune(TuneError),
    /// A learning rate or momentum outside its range (or not finite).
    BadHyperparameter,
    /// No valid data blob in the device's memory.
    NoData,
    /// A range past the end of the data blob.
    BadRange {
        /// Images in the blob.
        images: u32,
    },
    /// The host speaks another protocol version.
    Version {
        /// The device's.
        device: u16,
        /// The host's.
        host: u16,
    },
    /// An update request was refused; the running model is unchanged.
    Update(UpdateError),
    /// No slot holds a valid model: push one.
    NoModel,
    /// Fine-tuning needs an `f32` model, and the device runs another kind.
    NeedsF32 {
        /// The kind it runs.
        kind: Kind,
    },
    /// A push chunk longer than [`MAX_CHUNK`].
    BadChunkLength {
        /// Bytes received.
        got: u32,
    },
}

impl core::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceError::Frame(e) => write!(f, "the device rejected a frame: {e}"),
            DeviceError::UnknownRequest { tag } => write!(
                f,
                "the device does not know request #{tag}: update the firmware to this host's version"
            ),
            DeviceError::BadImageLength { got } => {
                write!(f, "image of {got} bytes, {IMAGE_BYTES} expected")
            }
            DeviceError::Tune(e) => write!(f, "fine-tuning refused: {e}"),
            DeviceError::BadHyperparameter => {
                f.write_str("learning rate must be finite and positive, momentum finite in [0, 1)")
            }
            DeviceError::NoData => f.write_str(
                "the device holds no data blob: start QEMU with \
                 -device loader,file=BLOB,addr=0x21000000,force-raw=on",
            ),
            DeviceError::BadRange { images } => {
                write!(
                    f,
                    "a range past the end of the data blob of {images} images"
                )
            }
            DeviceError::Version { device, host } if device < host => write!(
                f,
                "the device speaks protocol {device}, this host {host}: update the device's \
                 firmware (digits device hex, or flash it again)"
            ),
            DeviceError::Version { device, host } => write!(
                f,
                "the device speaks protocol {device}, this host {host}: update digits"
            ),
            DeviceError::Update(e) => write!(f, "{e}"),
            DeviceError::NoModel => f.write_str(
                "the device holds no valid model: push one with `digits device push MODEL`",
            ),
            DeviceError::NeedsF32 { kind } => write!(
                f,
                "fine-tuning needs an f32 model and the device runs a {kind} one: push an f32 \
                 model first"
            ),
            DeviceError::BadChunkLength { got } => {
                write!(
                    f,
                    "a push chunk of {got} bytes, at most {MAX_CHUNK} expected"
                )
            }
        }
    }
}

/// Decodes a request from a frame's payload, telling an unknown request from a damaged one.
pub fn decode_request(payload: &[u8]) -> Result<Request<'_>, DeviceError> {
    match crate::frame::decode::<Request<'_>>(payload) {
        Ok(Request::Classify { pixels } | Request::Sample { pixels, .. })
            if pixels.len() != IMAGE_BYTES =>
        {
            Err(DeviceError::BadImageLength {
                got: pixels.len() as u32,
            })
        }
        Ok(Request::PushChunk { bytes, .. }) if bytes.len() > MAX_CHUNK => {
            Err(DeviceError::BadChunkLength {
                got: bytes.len() as u32,
            })
        }
        Ok(request) => Ok(request),
        // The variant index is the first byte (a varint; one byte for small indices).
        Err(_) => match payload.first() {
            Some(&tag) if tag > LAST_REQUEST && tag < 0x80 => {
                Err(DeviceError::UnknownRequest { tag })
            }
            _ => Err(DeviceError::Frame(FrameError::Malformed)),
        },
    }
}
