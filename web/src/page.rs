//! What the page does, in safe Rust: load a model file, turn the canvas into the answer, teach
//! the model the person's handwriting. `abi` (wasm32 only) moves bytes between this and
//! JavaScript.

#[cfg(feature = "mlp")]
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::decimal::Hundredths;
use digits_core::finetune::Gradient;
#[cfg(feature = "mlp")]
use digits_core::finetune::MnistTuner;
#[cfg(feature = "mlp")]
use digits_core::model_file::{self, Precision};
use digits_core::model_file::{Metadata, ModelFileError};
#[cfg(feature = "mlp")]
use digits_core::params::Params;
use digits_core::preprocess::{Gray, Prepared, SIDE};
use digits_core::softmax::{argmax, softmax};
#[cfg(feature = "mlp")]
use digits_core::teach;
use digits_core::teach::{Sample, Summary};
use digits_core::verdict::{Limits, Reason, Verdict};
#[cfg(feature = "mlp")]
use digits_core::{Classifier, MnistMlp, MnistQuant};

use crate::text::Text;

/// Largest model file taken (the f32 784-128-10 file is about 400 KB).
pub const MAX_MODEL_FILE: usize = 1 << 20;
/// Largest canvas side: larger pictures are averaged down to this by the preprocessing anyway.
pub const MAX_CANVAS_SIDE: usize = digits_core::preprocess::WORK_SIDE;

/// Pixels of the picture the network sees.
pub const PICTURE: usize = SIDE * SIDE;

/// The kinds of model the page runs (the numbers JavaScript sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `f32` 784-128-10 network.
    F32 = 0,
    /// The same network quantized to int8.
    Int8 = 1,
    /// A compact low-bit network.
    Compact = 2,
}

/// What became of a drawing (the numbers JavaScript sees).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// A digit: the answer is [`Page::top`].
    Digit = 0,
    /// The network answered, but the verdict is "not a digit" ([`Page::text`] says why).
    NotADigit = 1,
    /// Nothing drawn.
    Blank = 2,
    /// Nothing stands out of the canvas as ink.
    Noise = 3,
    /// No model is loaded.
    NoModel = -1,
    /// The canvas is not `width` x `height` bytes.
    BadCanvas = -2,
}

/// Why a compact model's page does not teach.
const COMPACT_NOT_TAUGHT: &str =
    "this page teaches 784-128-10 models (f32 or int8); a compact model cannot be taught here yet";

/// Most samples a person can teach with at once.
pub const MAX_SAMPLES: usize = 100;

/// The loaded network. Models are boxed: the f32 one is 400 KB, too much for a stack.
enum Net {
    #[cfg(feature = "mlp")]
    F32(Box<MnistMlp>),
    #[cfg(feature = "mlp")]
    Int8(Box<MnistQuant>),
    /// A compact network borrows its file, so the file is kept and decoded when used (a few
    /// microseconds: it is small).
    Compact,
}

/// The page's state: one per page.
pub struct Page {
    file: Vec<u8>,
    net: Option<Net>,
    canvas: Vec<u8>,
    text: Text,
    picture: [u8; PICTURE],
    /// Whether `picture` holds the last drawing (not after a blank or noisy canvas).
    drawn: bool,
    logits: [f32; 10],
    probs: [f32; 10],
    samples: Vec<Sample>,
    #[cfg(feature = "mlp")]
    tuner: Option<Box<MnistTuner>>,
    /// The loaded network taught the samples (only `F32` and `Int8`), in use while present.
    tuned: Option<Net>,
    taught: Option<Taught>,
    /// The last model file written by [`Page::tuned_file`].
    out: Vec<u8>,
}

/// The last teaching.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(feature = "mlp"),
    allow(dead_code, reason = "only the mlp build teaches")
)]
struct Taught {
    summary: Summary,
    method: Gradient,
}

impl Default for Page {
    fn default() -> Self {
        Self::new()
    }
}

impl Page {
    /// A page with no model; `const` so that the module can keep it in a static.
    pub const fn new() -> Self {
        Page {
            file: Vec::new(),
            net: None,
            canvas: Vec::new(),
            text: Text::new(),
            picture: [0; PICTURE],
            drawn: false,
            logits: [0.0; 10],
            probs: [0.0; 10],
            samples: Vec::new(),
            #[cfg(feature = "mlp")]
            tuner: None,
            tuned: None,
            taught: None,
            out: Vec::new(),
        }
    }

    /// Room for a model file of `len` bytes, to be filled and then loaded with
    /// [`Page::load_model`]; `None` if larger than [`MAX_MODEL_FILE`].
    pub fn model_buffer(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > MAX_MODEL_FILE {
            self.text.set(format_args!(
                "the model file has {len} bytes, more than the page takes ({MAX_MODEL_FILE})"
            ));
            return None;
        }
        self.file.resize(len, 0);
        Some(&mut self.file)
    }

    /// Decodes and checks the model file in the buffer; on success [`Page::text`] describes
    /// it, else says why it was refused (and the previous model is gone).
    pub fn load_model(&mut self) -> Result<Kind, Refused> {
        self.net = None;
        self.tuned = None;
        self.taught = None;
        match self.decode() {
            Ok(net) => {
                let kind = match net {
                    #[cfg(feature = "mlp")]
                    Net::F32(_) => Kind::F32,
                    #[cfg(feature = "mlp")]
                    Net::Int8(_) => Kind::Int8,
                    Net::Compact => Kind::Compact,
                };
                self.net = Some(net);
                let description = Description(self);
                let mut text = Text::new();
                text.set(description);
                self.text = text;
                Ok(kind)
            }
            Err(why) => {
                self.text.set(why);
                Err(Refused)
            }
        }
    }

    fn decode(&self) -> Result<Net, Refusal> {
        match decode_any(&self.file)? {
            #[cfg(not(feature = "mlp"))]
            AnyModelFile::Mlp(_) => Err(Refusal::CompactOnly),
            #[cfg(feature = "mlp")]
            AnyModelFile::Mlp(file) => match file.precision {
                Precision::F32 => {
                    let mut model: Box<MnistMlp> = bytemuck::zeroed_box();
                    file.load_into(&mut *model)?;
                    Ok(Net::F32(model))
                }
                Precision::Int8 => {
                    let mut model: Box<MnistQuant> = bytemuck::zeroed_box();
                    file.load_int8_into(&mut *model)?;
                    Ok(Net::Int8(model))
                }
            },
            AnyModelFile::Compact(c) if c.model.classes() != 10 => {
                Err(Refusal::Classes(c.model.classes()))
            }
            AnyModelFile::Compact(_) => Ok(Net::Compact),
        }
    }

    /// Logits of a 28x28 picture with the network in use: the taught one, else the loaded one.
    pub fn logits_of(&self, picture: &[u8; PICTURE]) -> Option<[f32; 10]> {
        Some(match self.tuned.as_ref().or(self.net.as_ref())? {
            #[cfg(feature = "mlp")]
            Net::F32(m) => m.classify(picture),
            #[cfg(feature = "mlp")]
            Net::Int8(q) => q.classify(picture),
            Net::Compact => {
                let Ok(AnyModelFile::Compact(c)) = decode_any(&self.file) else {
                    unreachable!("the file was decoded as a compact model when it was loaded");
                };
                let mut z = [0.0f32; 10];
                c.model.logits_of_image(picture, &mut z);
                z
            }
        })
    }

    /// Room for a `width` x `height` canvas of gray levels (0 ink .. 255 paper); `None` if a
    /// side is 0 or larger than [`MAX_CANVAS_SIDE`].
    pub fn canvas(&mut self, width: usize, height: usize) -> Option<&mut [u8]> {
        if !(1..=MAX_CANVAS_SIDE).contains(&width) || !(1..=MAX_CANVAS_SIDE).contains(&height) {
            return None;
        }
        self.canvas.resize(width * height, 255);
        Some(&mut self.canvas)
    }

    /// Preprocesses the canvas as `digits predict` does a picture, classifies it and judges
    /// it ([`Verdict::judge`]: the ink and the network's confidence; the page carries no
    /// detector). The results are in [`Page::picture`], [`Page::logits`], [`Page::probs`] and
    /// [`Page::text`].
    pub fn classify(&mut self, width: usize, height: usize) -> Status {
        self.picture = [0; PICTURE];
        self.drawn = false;
        self.logits = [0.0; 10];
        self.probs = [0.0; 10];
        if self.net.is_none() {
            self.text.set("no model is loaded");
            return Status::NoModel;
        }
        let Some(gray) = Gray::new(width, height, &self.canvas) else {
            self.text.set(format_args!(
                "the canvas holds {} bytes, not {width} x {height}",
                self.canvas.len()
            ));
            return Status::BadCanvas;
        };
        let prepared = crate::heap::prepare(gray);
        let picture = match prepared {
            Ok(Prepared::Picture(p)) => p,
            Ok(Prepared::Nothing(Reason::Noise)) => {
                self.text.set(Reason::Noise);
                return Status::Noise;
            }
            Ok(Prepared::Nothing(reason)) => {
                self.text.set(reason);
                return Status::Blank;
            }
            // Only a picture without pixels, which `canvas` does not make.
            Err(e) => {
                self.text.set(e);
                return Status::Blank;
            }
        };
        let logits = self.logits_of(&picture).expect("a model is loaded");
        softmax(&logits, &mut self.probs);
        self.picture = picture;
        self.drawn = true;
        self.logits = logits;
        match Verdict::judge(&picture, &self.probs, &Limits::MNIST) {
            Verdict::Digit => {
                self.text.set("");
                Status::Digit
            }
            Verdict::NotADigit(reason) => {
                self.text.set(reason);
                Status::NotADigit
            }
        }
    }

    /// Adds the last drawing's picture as a sample of `label`; returns the samples held.
    pub fn teach_add(&mut self, label: u32) -> Result<usize, Refused> {
        let refusal = if label > 9 {
            Some("a sample's label is a digit 0-9")
        } else if !self.drawn {
            Some("draw a digit first: the canvas shows nothing to learn from")
        } else if self.samples.len() == MAX_SAMPLES {
            Some("the samples are full (100): teach, or clear them")
        } else {
            None
        };
        if let Some(why) = refusal {
            self.text.set(why);
            return Err(Refused);
        }
        self.samples.reserve_exact(MAX_SAMPLES - self.samples.len());
        self.samples.push(Sample {
            pixels: self.picture,
            label: label as u8,
        });
        Ok(self.samples.len())
    }

    /// The samples held.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Drops the last sample; returns the samples left.
    pub fn teach_undo(&mut self) -> usize {
        self.samples.pop();
        self.samples.len()
    }

    /// Drops every sample.
    pub fn teach_clear(&mut self) {
        self.samples.clear();
    }

    /// Teaches the loaded model the samples (always starting from the loaded model, with the
    /// page's plan, [`teach::PAGE`]); from now on the taught model answers. [`Page::text`]
    /// sums it up, or says why not.
    pub fn teach(&mut self, method: Gradient) -> Result<Summary, Refused> {
        let taught = self.teach_net(method);
        match taught {
            Ok((summary, net)) => {
                self.tuned = Some(net);
                self.taught = Some(Taught { summary, method });
                self.text.set(format_args!(
                    "accuracy on your {} samples: {} before, {} after",
                    summary.before.total, summary.before.correct, summary.after.correct
                ));
                Ok(summary)
            }
            Err(why) => {
                self.text.set(why);
                Err(Refused)
            }
        }
    }

    /// The loaded network taught the samples.
    #[cfg(feature = "mlp")]
    fn teach_net(&mut self, method: Gradient) -> Result<(Summary, Net), Unable> {
        let tuner = self
            .tuner
            .get_or_insert_with(|| Box::new(MnistTuner::zeroed()));
        let plan = &teach::PAGE;
        match self.net.as_ref() {
            None => Err(Unable::Text("no model is loaded")),
            Some(Net::Compact) => Err(Unable::Text(COMPACT_NOT_TAUGHT)),
            Some(Net::F32(model)) => {
                let mut out: Box<MnistMlp> = bytemuck::zeroed_box();
                teach::teach_f32(model, &self.samples, method, plan, tuner, &mut out)
                    .map(|s| (s, Net::F32(out)))
                    .map_err(Unable::Teach)
            }
            Some(Net::Int8(model)) => {
                let mut out: Box<MnistQuant> = bytemuck::zeroed_box();
                teach::teach_int8(model, &self.samples, method, plan, tuner, &mut out)
                    .map(|s| (s, Net::Int8(out)))
                    .map_err(Unable::Teach)
            }
        }
    }

    #[cfg(not(feature = "mlp"))]
    fn teach_net(&mut self, _: Gradient) -> Result<(Summary, Net), Unable> {
        Err(Unable::Text(match self.net {
            None => "no model is loaded",
            Some(_) => COMPACT_NOT_TAUGHT,
        }))
    }

    /// The last teaching's summary.
    pub fn taught(&self) -> Option<Summary> {
        self.taught.map(|t| t.summary)
    }

    /// Back to the loaded model (the samples stay).
    pub fn teach_reset(&mut self) {
        self.tuned = None;
        self.taught = None;
    }

    /// The model in use as a model file (the taught one, else the loaded file as it came):
    /// what the page offers for download, read by `digits eval`, `predict` and the device.
    pub fn tuned_file(&mut self) -> Result<&[u8], Refused> {
        match self.encode_taught() {
            None => self.out.clone_from(&self.file),
            Some(Ok(len)) => self.out.truncate(len),
            Some(Err(e)) => {
                self.text.set(e);
                return Err(Refused);
            }
        }
        Ok(&self.out)
    }

    /// Writes the taught model into `out`: its length, or `None` if nothing was taught.
    #[cfg(feature = "mlp")]
    fn encode_taught(&mut self) -> Option<Result<usize, ModelFileError>> {
        let (net, taught) = (self.tuned.as_ref()?, self.taught?);
        let Ok(AnyModelFile::Mlp(file)) = decode_any(&self.file) else {
            unreachable!("only 784-128-10 models are taught");
        };
        let mut options = Text::new();
        options.set(format_args!(
            "{{\"taught\":{{\"samples\":{},\"method\":\"{}\",\"plan\":\"page\"}}}}",
            taught.summary.before.total,
            match taught.method {
                Gradient::Backprop => "backprop",
                Gradient::Numeric => "central differences",
            }
        ));
        // Accuracy on the test set is unknown after teaching: `digits eval` measures it.
        let metadata = Metadata {
            test_accuracy: None,
            options: options.as_str(),
            ..file.metadata.clone()
        };
        let text = metadata.dataset.len() + metadata.options.len();
        Some(match net {
            Net::F32(m) => {
                let bound = model_file::encoded_len_bound(m.num_params(), text);
                self.out.resize(bound, 0);
                model_file::encode(m, &metadata, &mut self.out)
            }
            Net::Int8(q) => {
                let bound = model_file::encoded_len_bound(MnistQuant::stored_bytes() / 4, text);
                self.out.resize(bound, 0);
                model_file::encode_int8(q, &metadata, &mut self.out)
            }
            Net::Compact => unreachable!("compact models are not taught"),
        })
    }

    #[cfg(not(feature = "mlp"))]
    fn encode_taught(&mut self) -> Option<Result<usize, ModelFileError>> {
        None
    }

    /// The bytes [`Page::tuned_file`] wrote last.
    pub fn written(&self) -> &[u8] {
        &self.out
    }

    /// The digit with the highest probability in the last answer.
    pub fn top(&self) -> usize {
        argmax(&self.probs)
    }

    /// The 28x28 picture the network saw last (all 0 after a blank or noisy canvas).
    pub fn picture(&self) -> &[u8; PICTURE] {
        &self.picture
    }

    /// The last logits.
    pub fn logits(&self) -> &[f32; 10] {
        &self.logits
    }

    /// The last probabilities.
    pub fn probs(&self) -> &[f32; 10] {
        &self.probs
    }

    /// The last message.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }
}

/// A request the page refused; [`Page::text`] says why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// Why the page cannot teach.
enum Unable {
    Text(&'static str),
    #[cfg(feature = "mlp")]
    Teach(digits_core::teach::TeachError),
}

impl fmt::Display for Unable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unable::Text(t) => f.write_str(t),
            #[cfg(feature = "mlp")]
            Unable::Teach(e) => write!(f, "{e}"),
        }
    }
}

/// Why a model file was refused.
enum Refusal {
    File(ModelFileError),
    Classes(usize),
    #[cfg(not(feature = "mlp"))]
    CompactOnly,
}

impl From<ModelFileError> for Refusal {
    fn from(e: ModelFileError) -> Self {
        Refusal::File(e)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::File(e) => write!(f, "{e}"),
            Refusal::Classes(n) => write!(f, "the network has {n} classes, digits needs 10"),
            #[cfg(not(feature = "mlp"))]
            Refusal::CompactOnly => f.write_str("this page's module runs compact models only"),
        }
    }
}

/// One line about the loaded model: kind, layers, accuracy from its metadata, size.
struct Description<'a>(&'a Page);

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let page = self.0;
        let Ok(file) = decode_any(&page.file) else {
            return Ok(());
        };
        let metadata: &Metadata<'_> = match &file {
            AnyModelFile::Mlp(m) => {
                write!(f, "{} {}", m.precision, m.architecture)?;
                &m.metadata
            }
            AnyModelFile::Compact(c) => {
                f.write_str("compact ")?;
                c.model.write_arch(f)?;
                f.write_str(" ")?;
                c.model.write_precision(f)?;
                &c.metadata
            }
        };
        if let Some(a) = metadata.test_accuracy {
            write!(
                f,
                ", {}% on the {} test set",
                Hundredths(100.0 * a),
                metadata.dataset
            )?;
        }
        write!(f, ", {} bytes", page.file.len())
    }
}
