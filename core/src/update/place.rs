//! Where each byte of a model file goes in a slot, decided as the bytes stream in.
//!
//! A model runs in place from flash, so its parameters must lie in the memory layout of the
//! type that runs them ([`MnistMlp`] or [`MnistQuant`], both `#[repr(C)]`), 4-aligned. A
//! version 1 model file holds them as tensor payloads at unaligned offsets, with names and
//! lengths between them. [`Parser`] reads the file's structure byte by byte and routes each
//! payload to its field's offset in the slot's image ([`Route::Payload`]); every other byte
//! (magic, version, architecture, metadata, tensor names and lengths, checksum: the
//! *envelope*) goes to the envelope area, in order ([`Route::Envelope`]). No value is
//! converted: on these little-endian targets a payload's bytes are the field's bytes.
//!
//! A compact network (format version 2 or 3) borrows its tensors as bytes and has no alignment
//! needs: the whole file goes to the envelope area as it is.
//!
//! The same parser runs twice: as a push streams in (routing bytes to flash) and whenever a
//! slot is verified (replaying the envelope and the image in file order to recompute the
//! file's own CRC-32).

use core::mem::offset_of;

use crate::model_file::{
    Architecture, FORMAT_VERSION, INT8_TENSORS, MAGIC, ModelFileError, WINDOWS_VERSION,
    architecture_of,
};
use crate::{MnistMlp, MnistQuant};

use crate::crc32::CRC32;

/// What a slot holds, by the type that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A 784-128-10 network of `f32` ([`MnistMlp`]).
    F32,
    /// A 784-128-10 network of int8 codes ([`MnistQuant`]).
    Int8,
    /// A compact network ([`crate::compact::Compact`]), its file kept as it is.
    Compact,
}

impl Kind {
    /// The byte a slot header stores.
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::F32 => 1,
            Kind::Int8 => 2,
            Kind::Compact => 3,
        }
    }

    /// The kind a slot header's byte stands for.
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Kind::F32),
            2 => Some(Kind::Int8),
            3 => Some(Kind::Compact),
            _ => None,
        }
    }

    /// Bytes of its image (the parameters in their memory layout); 0 for a compact network.
    pub fn image_len(self) -> u32 {
        match self {
            Kind::F32 => size_of::<MnistMlp>() as u32,
            Kind::Int8 => size_of::<MnistQuant>() as u32,
            Kind::Compact => 0,
        }
    }

    /// The tensors of a version 1 file of this kind, in file order: name, bytes, and offset
    /// in the image.
    pub fn tensors(self) -> &'static [Tensor] {
        match self {
            Kind::F32 => &F32_TENSORS,
            Kind::Int8 => &INT8_LAYOUT,
            Kind::Compact => &[],
        }
    }
}

impl core::fmt::Display for Kind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Kind::F32 => "f32",
            Kind::Int8 => "int8",
            Kind::Compact => "compact",
        })
    }
}

/// One tensor of a version 1 file and where its payload lives in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tensor {
    /// Its name in the file.
    pub name: &'static str,
    /// Its payload's length in bytes.
    pub len: u32,
    /// The offset of its field in the image.
    pub offset: u32,
}

const fn tensor(name: &'static str, len: usize, offset: usize) -> Tensor {
    Tensor {
        name,
        len: len as u32,
        offset: offset as u32,
    }
}

const F32_TENSORS: [Tensor; 4] = [
    tensor("W1", 784 * 128 * 4, offset_of!(MnistMlp, hidden.w)),
    tensor("b1", 128 * 4, offset_of!(MnistMlp, hidden.b)),
    tensor("W2", 128 * 10 * 4, offset_of!(MnistMlp, output.w)),
    tensor("b2", 10 * 4, offset_of!(MnistMlp, output.b)),
];

const INT8_LAYOUT: [Tensor; 8] = [
    tensor(INT8_TENSORS[0], 784 * 128, offset_of!(MnistQuant, w1)),
    tensor(INT8_TENSORS[1], 128 * 4, offset_of!(MnistQuant, b1)),
    tensor(INT8_TENSORS[2], 128 * 4, offset_of!(MnistQuant, m1)),
    tensor(INT8_TENSORS[3], 128 * 4, offset_of!(MnistQuant, shift1)),
    tensor(INT8_TENSORS[4], 10 * 128, offset_of!(MnistQuant, w2)),
    tensor(INT8_TENSORS[5], 10 * 4, offset_of!(MnistQuant, b2)),
    tensor(INT8_TENSORS[6], 10 * 4, offset_of!(MnistQuant, out_scale)),
    tensor(INT8_TENSORS[7], 4, offset_of!(MnistQuant, hidden_scale)),
];

// Payloads are copied byte for byte into fields whose values are little-endian.
const _: () = assert!(cfg!(target_endian = "little"));

/// Where the next byte of the file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the envelope area, after the envelope bytes before it.
    Envelope,
    /// To the image: the next `left` bytes of tensor `index`, starting at image offset `at`.
    Payload {
        /// The tensor, in file order.
        index: u8,
        /// The image offset of the next byte.
        at: u32,
        /// Bytes of this payload still to come.
        left: u32,
    },
    /// Nothing more: the file is complete.
    Done,
}

/// The parts of a version 1 file, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Magic,
    Version,
    Input,
    Hidden,
    Output,
    Precision,
    DatasetLen,
    Dataset,
    AccuracyTag,
    Accuracy,
    Seed,
    Epochs,
    OptionsLen,
    Options,
    Count,
    NameLen,
    Name,
    PayloadLen,
    Payload,
    Checksum,
    /// A compact file: every byte to the envelope area until the checksum.
    Verbatim,
    /// Bytes after the last tensor that are not the checksum.
    Trailing,
    Done,
}

/// What the parse of a whole file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// What runs it.
    pub kind: Kind,
    /// The file's format version.
    pub version: u16,
    /// The CRC-32 the file stores (and its contents have: [`Parser::finish`] checks).
    pub crc: u32,
    /// Bytes that went to the envelope area.
    pub envelope_len: u32,
}

/// Reads a model file's structure as its bytes stream in; see the module's documentation.
pub struct Parser {
    len: u32,
    position: u32,
    field: Field,
    /// Bytes left of the field being read (magic, strings, names, payloads, checksum).
    left: u32,
    varint: u64,
    shift: u32,
    magic: [u8; 8],
    input: u32,
    hidden: u32,
    version: u16,
    kind: Option<Kind>,
    tensor: u8,
    name_matches: bool,
    name_len: u32,
    stored: [u8; 4],
    envelope_len: u32,
    crc: crc::Digest<'static, u32>,
}

/// Longest string the metadata may hold: anything longer is not a file `digits` wrote.
const MAX_TEXT: u64 = 1 << 16;

impl Parser {
    /// A parser for a file of `len` bytes.
    pub fn new(len: u32) -> Self {
        Self {
            len,
            position: 0,
            field: Field::Magic,
            left: MAGIC.len() as u32,
            varint: 0,
            shift: 0,
            magic: [0; 8],
            input: 0,
            hidden: 0,
            version: 0,
            kind: None,
            tensor: 0,
            name_matches: false,
            name_len: 0,
            stored: [0; 4],
            envelope_len: 0,
            crc: CRC32.digest(),
        }
    }

    /// Where the next byte goes.
    pub fn route(&self) -> Route {
        match self.field {
            Field::Payload => {
                let t = self.kind.expect("a payload has a kind").tensors()[self.tensor as usize];
                Route::Payload {
                    index: self.tensor,
                    at: t.offset + (t.len - self.left),
                    left: self.left,
                }
            }
            Field::Done => Route::Done,
            _ => Route::Envelope,
        }
    }

    /// What runs the file, once its header says.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// Bytes that went to the envelope so far.
    pub fn envelope_len(&self) -> u32 {
        self.envelope_len
    }

    /// Bytes of the file read so far.
    pub fn position(&self) -> u32 {
        self.position
    }

    /// Feeds bytes of the envelope: at most up to where [`Parser::route`] changes; returns how
    /// many it took (it stops after a byte that ends the envelope part).
    pub fn envelope(&mut self, bytes: &[u8]) -> Result<usize, ModelFileError> {
        if self.field == Field::Verbatim && self.position + 4 < self.len {
            // A compact file's body, in bulk up to its checksum.
            let n = bytes.len().min((self.len - 4 - self.position) as usize);
            self.crc.update(&bytes[..n]);
            self.position += n as u32;
            self.envelope_len += n as u32;
            if self.position + 4 == self.len {
                self.enter(Field::Checksum, 4);
            }
            return Ok(n);
        }
        for (n, &b) in bytes.iter().enumerate() {
            if !matches!(self.route(), Route::Envelope) {
                return Ok(n);
            }
            self.byte(b)?;
        }
        Ok(bytes.len())
    }

    /// Feeds the next bytes of a payload (no more than its `left`).
    pub fn payload(&mut self, bytes: &[u8]) -> Result<(), ModelFileError> {
        let n = bytes.len() as u32;
        if self.field != Field::Payload || n > self.left {
            return Err(ModelFileError::Malformed);
        }
        // The checksum's 4 bytes must follow the last payload.
        if self.position + n + 4 > self.len {
            return Err(ModelFileError::TooShort {
                len: self.len as usize,
            });
        }
        self.crc.update(bytes);
        self.position += bytes.len() as u32;
        self.left -= bytes.len() as u32;
        if self.left == 0 {
            self.next_tensor();
        }
        Ok(())
    }

    /// Checks that the file ended where it should and that its checksum matches.
    pub fn finish(self) -> Result<Parsed, ModelFileError> {
        if self.field != Field::Done {
            return Err(if self.position < self.len {
                ModelFileError::TooShort {
                    len: self.position as usize,
                }
            } else {
                ModelFileError::Malformed
            });
        }
        let stored = u32::from_le_bytes(self.stored);
        let computed = self.crc.finalize();
        if stored != computed {
            return Err(ModelFileError::BadChecksum { stored, computed });
        }
        Ok(Parsed {
            kind: self.kind.expect("a complete file has a kind"),
            version: self.version,
            crc: stored,
            envelope_len: self.envelope_len,
        })
    }

    fn byte(&mut self, b: u8) -> Result<(), ModelFileError> {
        if self.position >= self.len || self.field == Field::Trailing {
            return Err(ModelFileError::Malformed);
        }
        self.position += 1;
        self.envelope_len += 1;
        match self.field {
            Field::Checksum => {
                self.stored[4 - self.left as usize] = b;
                self.left -= 1;
                if self.left == 0 {
                    self.field = Field::Done;
                }
                return Ok(());
            }
            _ => self.crc.update(&[b]),
        }
        // The checksum's 4 bytes end every file: whatever was being read must be done.
        let checksum_next = self.position + 4 == self.len;
        match self.field {
            Field::Magic => {
                self.magic[8 - self.left as usize] = b;
                self.left -= 1;
                if self.left == 0 {
                    if self.magic != MAGIC {
                        return Err(ModelFileError::BadMagic { found: self.magic });
                    }
                    self.field = Field::Version;
                }
            }
            Field::Verbatim => {}
            Field::Dataset | Field::Options | Field::Accuracy | Field::Name => {
                if self.field == Field::Name {
                    let name = self.kind.expect("names follow the precision").tensors()
                        [self.tensor as usize]
                        .name
                        .as_bytes();
                    let at = (self.name_len - self.left) as usize;
                    self.name_matches &= name.get(at) == Some(&b);
                }
                self.left -= 1;
                if self.left == 0 {
                    self.after_bytes()?;
                }
            }
            _ => {
                if let Some(value) = self.varint_byte(b)? {
                    self.after_varint(value)?;
                }
            }
        }
        if checksum_next && self.field != Field::Checksum {
            if self.field != Field::Verbatim {
                // The structure is not over where the checksum must start: cut short.
                return Err(ModelFileError::TooShort {
                    len: self.len as usize,
                });
            }
            self.enter(Field::Checksum, 4);
        }
        Ok(())
    }

    /// Adds one byte to the varint being read; its value once complete.
    fn varint_byte(&mut self, b: u8) -> Result<Option<u64>, ModelFileError> {
        if self.shift >= 64 {
            return Err(ModelFileError::Malformed);
        }
        self.varint |= u64::from(b & 0x7F) << self.shift;
        if b & 0x80 != 0 {
            self.shift += 7;
            return Ok(None);
        }
        let value = self.varint;
        (self.varint, self.shift) = (0, 0);
        Ok(Some(value))
    }

    fn enter(&mut self, field: Field, left: u64) {
        self.field = field;
        self.left = left as u32;
    }

    fn after_varint(&mut self, value: u64) -> Result<(), ModelFileError> {
        let small = |v: u64| u32::try_from(v).map_err(|_| ModelFileError::Malformed);
        match self.field {
            Field::Version => {
                let version = u16::try_from(value).map_err(|_| ModelFileError::Malformed)?;
                self.version = version;
                match version {
                    FORMAT_VERSION => self.field = Field::Input,
                    v if v > FORMAT_VERSION && v <= WINDOWS_VERSION => {
                        self.kind = Some(Kind::Compact);
                        self.field = Field::Verbatim;
                    }
                    found => return Err(ModelFileError::UnsupportedVersion { found }),
                }
            }
            Field::Input => (self.input, self.field) = (small(value)?, Field::Hidden),
            Field::Hidden => (self.hidden, self.field) = (small(value)?, Field::Output),
            Field::Output => {
                let found = Architecture {
                    input: self.input,
                    hidden: self.hidden,
                    output: small(value)?,
                };
                let expected = architecture_of::<784, 128, 10>();
                if found != expected {
                    return Err(ModelFileError::WrongArchitecture { found, expected });
                }
                self.field = Field::Precision;
            }
            Field::Precision => {
                self.kind = Some(match value {
                    0 => Kind::F32,
                    1 => Kind::Int8,
                    _ => return Err(ModelFileError::Malformed),
                });
                self.field = Field::DatasetLen;
            }
            Field::DatasetLen => self.text(Field::Dataset, value, Field::AccuracyTag)?,
            Field::AccuracyTag => match value {
                0 => self.field = Field::Seed,
                1 => self.enter(Field::Accuracy, 4),
                _ => return Err(ModelFileError::Malformed),
            },
            Field::Seed => self.field = Field::Epochs,
            Field::Epochs => {
                small(value)?;
                self.field = Field::OptionsLen;
            }
            Field::OptionsLen => self.text(Field::Options, value, Field::Count)?,
            Field::Count => {
                let expected = self.known_kind().tensors().len();
                if value != expected as u64 {
                    return Err(ModelFileError::BadTensor {
                        index: (value as usize).min(expected),
                        len: 0,
                        expected: 0,
                    });
                }
                self.field = Field::NameLen;
            }
            Field::NameLen => {
                let name = self.known_kind().tensors()[self.tensor as usize].name;
                self.name_matches = value == name.len() as u64;
                self.name_len = value.min(MAX_TEXT) as u32;
                if value > MAX_TEXT {
                    return Err(ModelFileError::Malformed);
                }
                if value == 0 {
                    self.field = Field::PayloadLen;
                } else {
                    self.enter(Field::Name, value);
                }
            }
            Field::PayloadLen => {
                let t = self.known_kind().tensors()[self.tensor as usize];
                if !self.name_matches || value != u64::from(t.len) {
                    return Err(ModelFileError::BadTensor {
                        index: self.tensor as usize,
                        len: value.min(u64::from(u32::MAX)) as usize,
                        expected: t.len as usize,
                    });
                }
                self.enter(Field::Payload, value);
            }
            _ => unreachable!("not a varint field"),
        }
        Ok(())
    }

    /// After a string's length: its bytes, or straight to `then` if it is empty.
    fn text(&mut self, field: Field, len: u64, then: Field) -> Result<(), ModelFileError> {
        if len > MAX_TEXT {
            return Err(ModelFileError::Malformed);
        }
        if len == 0 {
            self.field = then;
        } else {
            self.enter(field, len);
        }
        Ok(())
    }

    fn after_bytes(&mut self) -> Result<(), ModelFileError> {
        self.field = match self.field {
            Field::Dataset => Field::AccuracyTag,
            Field::Accuracy => Field::Seed,
            Field::Options => Field::Count,
            Field::Name => Field::PayloadLen,
            _ => unreachable!("not a byte field"),
        };
        Ok(())
    }

    fn next_tensor(&mut self) {
        self.tensor += 1;
        if (self.tensor as usize) < self.known_kind().tensors().len() {
            self.field = Field::NameLen;
        } else if self.position + 4 == self.len {
            self.enter(Field::Checksum, 4);
        } else {
            // More bytes than the last tensor and the checksum: the next one is refused.
            self.field = Field::Trailing;
        }
    }

    fn known_kind(&self) -> Kind {
        self.kind.expect("read after the precision")
    }
}
