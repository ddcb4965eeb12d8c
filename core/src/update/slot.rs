//! One slot: its header, and the check that it holds a complete, intact model.
//!
//! ```text
//! 0x00  header, programmed at commit:
//!       "DGTSLOT1" | seq u32 | file_len u32 | file_crc u32 | envelope_len u32
//!       | kind u8 | version u8 | 0 u16 | header CRC-32 u32            (32 bytes)
//! 0x20  commit word: erased until COMMITTED is programmed, after the header
//! 0x24  revoke word: erased while the slot may run; anything else revokes it (rollback)
//! 0x40  envelope: the file's bytes other than tensor payloads, in order (a compact
//!       network's whole file)
//! 0x800 image: the parameters in their memory layout (f32 and int8 networks)
//! ```
//!
//! A slot counts only if its header, commit word and revoke word say so *and* replaying the
//! envelope and the image in file order gives the file's own CRC-32, and every value is in
//! range. The commit word is programmed last, after everything it vouches for.

use crate::compact::Compact;
use crate::compact_file::decode_compact;
use crate::model_file::{self, Metadata, ModelFileError};

use super::flash::ERASED;
use super::place::{Kind, Parsed, Parser, Route};
use crate::crc32::CRC32;

/// First bytes of a slot header.
pub const SLOT_MAGIC: [u8; 8] = *b"DGTSLOT1";
/// Bytes of the header (the CRC-protected part).
pub const HEADER_LEN: u32 = 32;
/// Offset of the commit word.
pub const COMMIT_AT: u32 = 0x20;
/// Offset of the revoke word.
pub const REVOKE_AT: u32 = 0x24;
/// Offset of the envelope area.
pub const ENVELOPE_AT: u32 = 0x40;
/// Offset of the image (a multiple of 8, so that the parameters are aligned).
pub const IMAGE_AT: u32 = 0x800;
/// What the commit word holds once the slot is complete.
pub const COMMITTED: u32 = 0xC0DE_600D;

/// What a slot's header records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Header {
    /// Higher is newer: the valid slot with the highest runs.
    pub seq: u32,
    /// Bytes of the model file.
    pub file_len: u32,
    /// The model file's own CRC-32 (its last 4 bytes).
    pub file_crc: u32,
    /// Bytes in the envelope area.
    pub envelope_len: u32,
    /// What runs it.
    pub kind: Kind,
    /// The model file's format version.
    pub version: u16,
}

impl Header {
    /// The header's bytes, as programmed.
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[..8].copy_from_slice(&SLOT_MAGIC);
        b[8..12].copy_from_slice(&self.seq.to_le_bytes());
        b[12..16].copy_from_slice(&self.file_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.file_crc.to_le_bytes());
        b[20..24].copy_from_slice(&self.envelope_len.to_le_bytes());
        b[24] = self.kind.code();
        b[25] = self.version as u8;
        let crc = CRC32.checksum(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// The header in `slot`'s first bytes, if its magic and CRC are right.
    pub fn decode(slot: &[u8]) -> Option<Self> {
        if slot.len() < ENVELOPE_AT as usize {
            return None;
        }
        let b = &slot[..HEADER_LEN as usize];
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if b[..8] != SLOT_MAGIC || b[26..28] != [0, 0] || CRC32.checksum(&b[..28]) != word(28) {
            return None;
        }
        Some(Self {
            seq: word(8),
            file_len: word(12),
            file_crc: word(16),
            envelope_len: word(20),
            kind: Kind::from_code(b[24])?,
            version: u16::from(b[25]),
        })
    }
}

/// Reads the little-endian word at `at` of `slot`.
pub(crate) fn word_at(slot: &[u8], at: u32) -> u32 {
    let at = at as usize;
    u32::from_le_bytes([slot[at], slot[at + 1], slot[at + 2], slot[at + 3]])
}

/// What a slot holds, as far as a look at it can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum State {
    /// No header: never written, erased, or a push that did not commit.
    Empty,
    /// A committed model, complete and intact, that may run.
    Valid,
    /// A valid model set aside by a rollback.
    Revoked,
    /// A header whose content fails its check (damaged, or cut off by a power loss).
    Damaged,
}

/// Why a slot's content is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentError {
    /// The model file is refused (as `digits eval` would refuse it).
    Model(ModelFileError),
    /// The envelope does not fit its area.
    EnvelopeTooLarge,
}

/// A verified slot's content, borrowed from flash.
#[derive(Clone, Copy, Debug)]
pub struct Content<'a> {
    /// What runs it.
    pub kind: Kind,
    /// The envelope area (a compact network's whole file).
    pub envelope: &'a [u8],
    /// The parameters in their memory layout (empty for a compact network).
    pub image: &'a [u8],
}

impl<'a> Content<'a> {
    /// The content `header` describes, sliced out of `slot` (which must be large enough:
    /// [`verify`] checks).
    pub(crate) fn at(slot: &'a [u8], header: &Header) -> Self {
        let envelope = &slot[ENVELOPE_AT as usize..][..header.envelope_len as usize];
        let image = match header.kind {
            Kind::Compact => &[][..],
            kind => &slot[IMAGE_AT as usize..][..kind.image_len() as usize],
        };
        Content {
            kind: header.kind,
            envelope,
            image,
        }
    }

    /// The metadata the model file carries.
    pub fn metadata(&self) -> Metadata<'a> {
        match self.kind {
            Kind::Compact => match decode_compact(self.envelope) {
                Ok(file) => file.metadata,
                Err(_) => unreachable!("verified as a compact file"),
            },
            Kind::F32 | Kind::Int8 => match model_file::decode_prefix(self.envelope) {
                Ok(prefix) => prefix.metadata,
                Err(_) => unreachable!("verified as a model file"),
            },
        }
    }

    /// A compact network, its tensors borrowed from flash.
    pub fn compact(&self) -> Option<Compact<'a>> {
        match self.kind {
            Kind::Compact => decode_compact(self.envelope).ok().map(|file| file.model),
            _ => None,
        }
    }
}

/// Checks that `slot` holds the model file `header` describes, complete and intact: the
/// file's CRC-32 recomputed over the envelope and the image in file order, the structure and
/// every value (as the model file's decoder checks them).
pub fn verify<'a>(slot: &'a [u8], header: &Header) -> Result<Content<'a>, ContentError> {
    let envelope_end = ENVELOPE_AT as usize + header.envelope_len as usize;
    let limit = match header.kind {
        Kind::Compact => slot.len(),
        Kind::F32 | Kind::Int8 => IMAGE_AT as usize,
    };
    if envelope_end > limit {
        return Err(ContentError::EnvelopeTooLarge);
    }
    if IMAGE_AT as usize + header.kind.image_len() as usize > slot.len() {
        return Err(ContentError::EnvelopeTooLarge);
    }
    let Content {
        envelope, image, ..
    } = Content::at(slot, header);
    let parsed = replay(envelope, image, header.file_len).map_err(ContentError::Model)?;
    let expected = Parsed {
        kind: header.kind,
        version: header.version,
        crc: header.file_crc,
        envelope_len: header.envelope_len,
    };
    if parsed != expected {
        return Err(ContentError::Model(ModelFileError::BadChecksum {
            stored: header.file_crc,
            computed: parsed.crc,
        }));
    }
    let content = Content {
        kind: header.kind,
        envelope,
        image,
    };
    check_values(&content).map_err(ContentError::Model)?;
    Ok(content)
}

/// The parse of the file whose envelope and image are these, fed in file order.
fn replay(envelope: &[u8], image: &[u8], file_len: u32) -> Result<Parsed, ModelFileError> {
    let mut parser = Parser::new(file_len);
    let mut rest = envelope;
    loop {
        match parser.route() {
            Route::Done => break,
            Route::Envelope => {
                if rest.is_empty() {
                    return Err(ModelFileError::TooShort {
                        len: parser.position() as usize,
                    });
                }
                let taken = parser.envelope(rest)?;
                rest = &rest[taken..];
            }
            Route::Payload { at, left, .. } => {
                parser.payload(&image[at as usize..(at + left) as usize])?;
            }
        }
    }
    if !rest.is_empty() {
        return Err(ModelFileError::Malformed);
    }
    parser.finish()
}

/// The checks the model file's decoder makes on the values: f32 finite; int8 codes, scales,
/// multipliers and shifts in range; a compact network decoded and checked whole.
fn check_values(content: &Content<'_>) -> Result<(), ModelFileError> {
    match content.kind {
        Kind::Compact => decode_compact(content.envelope).map(|_| ()),
        kind => {
            let precision = match kind {
                Kind::F32 => model_file::Precision::F32,
                _ => model_file::Precision::Int8,
            };
            model_file::decode_prefix(content.envelope)?;
            for (index, t) in kind.tensors().iter().enumerate() {
                let bytes = &content.image[t.offset as usize..(t.offset + t.len) as usize];
                model_file::check_tensor(precision, index, bytes)?;
            }
            Ok(())
        }
    }
}

/// Whether the commit word says the slot is complete and the revoke word that it may run.
pub(crate) fn marks(slot: &[u8]) -> (bool, bool) {
    (
        word_at(slot, COMMIT_AT) == COMMITTED,
        word_at(slot, REVOKE_AT) == ERASED,
    )
}
