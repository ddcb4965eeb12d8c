//! What the page does, in safe Rust: load a model file, turn the canvas into the answer, teach
//! the model the person's handwriting. [`crate::abi`] only moves bytes between this and
//! JavaScript.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use digits_core::compact_file::{AnyModelFile, decode_any};
use digits_core::decimal::Hundredths;
use digits_core::model_file::{Metadata, ModelFileError, Precision};
use digits_core::preprocess::{Gray, Prepared, SIDE, prepare};
use digits_core::softmax::{argmax, softmax};
use digits_core::verdict::{Limits, Reason, Verdict};
use digits_core::{Classifier, MnistMlp, MnistQuant};

use crate::heap::scratch;
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

/// The loaded network. Models are boxed: the f32 one is 400 KB, too much for a stack.
enum Net {
    F32(Box<MnistMlp>),
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
    logits: [f32; 10],
    probs: [f32; 10],
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
            logits: [0.0; 10],
            probs: [0.0; 10],
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
    pub fn load_model(&mut self) -> Result<Kind, ()> {
        self.net = None;
        match self.decode() {
            Ok(net) => {
                let kind = match net {
                    Net::F32(_) => Kind::F32,
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
                Err(())
            }
        }
    }

    fn decode(&self) -> Result<Net, Refusal> {
        match decode_any(&self.file)? {
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

    /// Logits of a 28x28 picture with the loaded network.
    pub fn logits_of(&self, picture: &[u8; PICTURE]) -> Option<[f32; 10]> {
        Some(match self.net.as_ref()? {
            Net::F32(m) => m.classify(picture),
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
        let prepared = scratch(|| prepare(gray));
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

/// Why a model file was refused.
enum Refusal {
    File(ModelFileError),
    Classes(usize),
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
