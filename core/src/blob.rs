//! The data blob: a batch of images (and labels) the host hands the device in one piece, for
//! the `eval` programs and `serve`'s `Evaluate` requests.
//!
//! ```text
//! offset  size         field
//!      0     8         magic "DIGITSEV"
//!      8     4         count: images, little-endian u32, at least 1
//!     12     4         flags: little-endian u32; bit 0 labels follow the images,
//!                      bit 1 print every image's logits; other bits must be 0
//!     16     count*784 images: 28x28 pixels, row by row, one byte each (as in MNIST's IDX)
//!      .     count     labels (0-9), if flag bit 0
//!      .     8         end mark "DIGITEND" (catches a truncated blob or a wrong count)
//! ```
//!
//! On the mps2-an386, QEMU loads it into the PSRAM at [`BLOB_ADDRESS`]:
//! `-device loader,file=BLOB,addr=0x21000000,force-raw=on`.
//!
//! Both sides use this module: the host writes blobs with [`Contents`], the device reads them
//! with [`Blob::parse`] (from memory) or [`Header::parse`] (piece by piece from a file). The
//! writer needs no heap: it hands its pieces to a sink, or fills a caller's buffer.

use core::fmt;

/// First bytes of a data blob.
pub const MAGIC: [u8; 8] = *b"DIGITSEV";
/// Last bytes of a data blob.
pub const END_MARK: [u8; 8] = *b"DIGITEND";
/// Bytes before the first image.
pub const HEADER_LEN: usize = 16;
/// Pixels (bytes) of one image, 28x28.
pub const IMAGE_LEN: usize = 784;
/// Flag: `count` labels follow the images.
pub const FLAG_LABELS: u32 = 1 << 0;
/// Flag: print every image's logits.
pub const FLAG_LOGITS: u32 = 1 << 1;
/// Where the host has QEMU load a data blob on the mps2-an386: the start of its PSRAM.
pub const BLOB_ADDRESS: usize = 0x2100_0000;

/// Why bytes are not a data blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobError {
    /// The bytes do not start with [`MAGIC`] (or are shorter than a header).
    NoMagic,
    /// Flag bits other than [`FLAG_LABELS`] and [`FLAG_LOGITS`].
    UnknownFlags,
    /// A count of 0.
    NoImages,
    /// The count says more images than the bytes hold.
    TooShort,
    /// No [`END_MARK`] where the count puts the end.
    NoEndMark,
    /// A label above 9.
    BadLabel,
}

impl BlobError {
    /// What the device logs (the same words on the host).
    pub const fn message(self) -> &'static str {
        match self {
            BlobError::NoMagic => "bad data blob: it does not start with \"DIGITSEV\"",
            BlobError::UnknownFlags => "bad data blob: unknown flags (known: 1 labels, 2 logits)",
            BlobError::NoImages => "bad data blob: it holds no images (count 0)",
            BlobError::TooShort => "bad data blob: count says more images than the memory holds",
            BlobError::NoEndMark => {
                "bad data blob: no \"DIGITEND\" where its count says it ends \
                        (truncated, or a wrong count)"
            }
            BlobError::BadLabel => "bad data blob: a label is not a digit 0-9",
        }
    }
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for BlobError {}

/// Why [`Contents`] cannot be written as a data blob (the host's errors, apart from the
/// reader's, which the device logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// No images: the reader refuses a count of 0.
    NoImages,
    /// More images than a `u32` counts.
    TooManyImages,
    /// Not as many labels as images.
    LabelCount,
    /// A label above 9.
    BadLabel,
    /// The caller's buffer is shorter than the blob.
    BufferTooSmall,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WriteError::NoImages => "data blob not written: it would hold no images",
            WriteError::TooManyImages => "data blob not written: more than 2^32 - 1 images",
            WriteError::LabelCount => "data blob not written: not as many labels as images",
            WriteError::BadLabel => "data blob not written: a label is not a digit 0-9",
            WriteError::BufferTooSmall => "data blob not written: the buffer is too small",
        })
    }
}

impl core::error::Error for WriteError {}

/// The firmware's errors are `&'static str` messages it logs; `?` turns a [`BlobError`] into
/// one.
impl From<BlobError> for &'static str {
    fn from(e: BlobError) -> Self {
        e.message()
    }
}

/// The fixed-size start of a data blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Images in the blob.
    pub count: u32,
    /// [`FLAG_LABELS`], [`FLAG_LOGITS`].
    pub flags: u32,
}

impl Header {
    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..].copy_from_slice(&self.flags.to_le_bytes());
        b
    }

    /// Reads and checks a header: magic, known flags, at least one image.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, BlobError> {
        if bytes[..8] != MAGIC {
            return Err(BlobError::NoMagic);
        }
        let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let header = Header {
            count: word(8),
            flags: word(12),
        };
        if header.flags & !(FLAG_LABELS | FLAG_LOGITS) != 0 {
            return Err(BlobError::UnknownFlags);
        }
        if header.count == 0 {
            return Err(BlobError::NoImages);
        }
        Ok(header)
    }

    /// Whether labels follow the images.
    pub fn has_labels(&self) -> bool {
        self.flags & FLAG_LABELS != 0
    }

    /// Bytes of the whole blob this header describes.
    pub fn blob_len(&self) -> u64 {
        let labels = if self.has_labels() { 1 } else { 0 };
        HEADER_LEN as u64 + self.count as u64 * (IMAGE_LEN as u64 + labels) + END_MARK.len() as u64
    }
}

/// A validated data blob, borrowed from memory.
#[derive(Clone, Copy, Debug)]
pub struct Blob<'a> {
    /// The header.
    pub header: Header,
    /// The images.
    pub images: &'a [[u8; IMAGE_LEN]],
    /// The labels, with [`FLAG_LABELS`].
    pub labels: Option<&'a [u8]>,
}

impl<'a> Blob<'a> {
    /// Finds a blob at the start of `memory` (which may be longer than the blob) and checks it:
    /// magic, flags, a count of at least one image, the whole blob inside `memory`, the end
    /// mark where the count puts it, labels 0-9.
    pub fn parse(memory: &'a [u8]) -> Result<Self, BlobError> {
        let header = memory
            .first_chunk::<HEADER_LEN>()
            .ok_or(BlobError::NoMagic)
            .and_then(Header::parse)?;
        if header.blob_len() > memory.len() as u64 {
            return Err(BlobError::TooShort);
        }
        let (count, len) = (header.count as usize, header.blob_len() as usize);
        let (body, end) = memory[HEADER_LEN..len].split_at(len - HEADER_LEN - END_MARK.len());
        if end != END_MARK {
            return Err(BlobError::NoEndMark);
        }
        let (pixels, labels) = body.split_at(count * IMAGE_LEN);
        let (images, rest) = pixels.as_chunks::<IMAGE_LEN>();
        debug_assert!(rest.is_empty());
        let labels = header.has_labels().then_some(labels);
        if labels.is_some_and(|l| l.iter().any(|&y| y > 9)) {
            return Err(BlobError::BadLabel);
        }
        Ok(Self {
            header,
            images,
            labels,
        })
    }
}

/// What goes into a data blob, for writing one: the images and their labels, each in one or
/// more pieces laid end to end (so that two evaluation sets make one blob without being copied
/// into one list first).
#[derive(Clone, Copy, Debug)]
pub struct Contents<'a> {
    /// The images, piece after piece.
    pub images: &'a [&'a [[u8; IMAGE_LEN]]],
    /// Their labels in the same order, piece after piece (the pieces need not match the
    /// images'); `None` for a blob without labels.
    pub labels: Option<&'a [&'a [u8]]>,
    /// Whether the device prints every image's logits ([`FLAG_LOGITS`]).
    pub print_logits: bool,
}

impl Contents<'_> {
    /// The blob's header, after checking that [`Blob::parse`] will take the blob: at least one
    /// image (and fewer than 2^32), as many labels as images, every label 0-9.
    pub fn header(&self) -> Result<Header, WriteError> {
        let images: usize = self.images.iter().map(|piece| piece.len()).sum();
        let count = u32::try_from(images).map_err(|_| WriteError::TooManyImages)?;
        if count == 0 {
            return Err(WriteError::NoImages);
        }
        let mut flags = if self.print_logits { FLAG_LOGITS } else { 0 };
        if let Some(labels) = self.labels {
            if labels.iter().map(|piece| piece.len()).sum::<usize>() != images {
                return Err(WriteError::LabelCount);
            }
            if labels.iter().flat_map(|piece| piece.iter()).any(|&y| y > 9) {
                return Err(WriteError::BadLabel);
            }
            flags |= FLAG_LABELS;
        }
        Ok(Header { count, flags })
    }

    /// Writes the blob as a sequence of byte pieces to `sink` (header, images, labels, end
    /// mark); returns its header. Nothing is written if the contents are refused.
    pub fn write(&self, mut sink: impl FnMut(&[u8])) -> Result<Header, WriteError> {
        let header = self.header()?;
        sink(&header.to_bytes());
        for piece in self.images {
            sink(piece.as_flattened());
        }
        for piece in self.labels.unwrap_or_default() {
            sink(piece);
        }
        sink(&END_MARK);
        Ok(header)
    }

    /// Writes the blob into the start of `out`; returns the blob's bytes.
    pub fn write_into<'o>(&self, out: &'o mut [u8]) -> Result<&'o [u8], WriteError> {
        let len = self.header()?.blob_len();
        if len > out.len() as u64 {
            return Err(WriteError::BufferTooSmall);
        }
        let mut at = 0;
        self.write(|piece| {
            out[at..at + piece.len()].copy_from_slice(piece);
            at += piece.len();
        })?;
        Ok(&out[..at])
    }
}
