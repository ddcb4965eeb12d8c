//! Framing of protocol messages on a byte stream (the UART):
//!
//! ```text
//! COBS( postcard(message) | CRC-32 of it, little-endian ) | 0x00
//! ```
//!
//! COBS removes every zero from the frame, so `0x00` marks the end of one unambiguously and a
//! reader that starts in the middle of a stream, or after garbage, resynchronizes at the next
//! zero. The CRC catches corruption that COBS alone would pass on. Frames are bounded: a reader
//! never buffers more than `N` bytes, and an overlong frame is reported once and skipped.

use serde::{Deserialize, Serialize};

use crate::crc32::CRC32 as CRC;

/// Largest encoded frame, delimiter included, that either side sends or accepts.
pub const MAX_FRAME: usize = 1024;

/// Why a frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameError {
    /// Longer than the reader's buffer; skipped up to its delimiter.
    Oversized,
    /// Not valid COBS.
    Corrupt,
    /// Too short to hold a checksum, or the checksum does not match.
    Checksum,
    /// The checksum matches but the message does not decode.
    Malformed,
    /// The output buffer is too small for the message.
    BufferTooSmall,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::Oversized => "frame longer than the buffer",
            FrameError::Corrupt => "frame is not valid COBS",
            FrameError::Checksum => "frame checksum mismatch",
            FrameError::Malformed => "frame holds no valid message",
            FrameError::BufferTooSmall => "buffer too small for the frame",
        })
    }
}

impl core::error::Error for FrameError {}

/// Encodes `message` as one frame into `out`; returns the frame (delimiter included).
/// `scratch` holds the unencoded payload and must be at least as large as `out`.
pub fn encode<'o, T: Serialize>(
    message: &T,
    scratch: &mut [u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], FrameError> {
    let room = scratch.len().saturating_sub(4);
    let n = postcard::to_slice(message, &mut scratch[..room])
        .map_err(|_| FrameError::BufferTooSmall)?
        .len();
    seal(scratch, n, out)
}

/// Frames `payload` (bytes already encoded, or any bytes at all: a test's way to reach the
/// message decoders behind the checksum) into `out`; returns the frame (delimiter included).
/// `scratch` must hold the payload and its checksum. No message is empty: the frame of an
/// empty payload is a bare checksum, which readers refuse as [`FrameError::Checksum`].
pub fn encode_payload<'o>(
    payload: &[u8],
    scratch: &mut [u8],
    out: &'o mut [u8],
) -> Result<&'o [u8], FrameError> {
    if scratch.len() < payload.len() + 4 {
        return Err(FrameError::BufferTooSmall);
    }
    scratch[..payload.len()].copy_from_slice(payload);
    seal(scratch, payload.len(), out)
}

/// Appends the CRC-32 of `scratch[..n]`, COBS-encodes into `out` and ends with the delimiter.
fn seal<'o>(scratch: &mut [u8], n: usize, out: &'o mut [u8]) -> Result<&'o [u8], FrameError> {
    let crc = CRC.checksum(&scratch[..n]);
    scratch[n..n + 4].copy_from_slice(&crc.to_le_bytes());
    let payload = &scratch[..n + 4];
    // COBS adds one byte per 254, plus one; then the delimiter.
    if out.len() < payload.len() + payload.len() / 254 + 2 {
        return Err(FrameError::BufferTooSmall);
    }
    let m = cobs::try_encode(payload, out).map_err(|_| FrameError::BufferTooSmall)?;
    out[m] = 0;
    Ok(&out[..=m])
}

/// The buffers [`encode`] needs, for a sender that frames one message at a time: the device's
/// replies, the host's requests, the tests' frames.
pub struct FrameWriter {
    scratch: [u8; MAX_FRAME],
    out: [u8; MAX_FRAME],
}

impl Default for FrameWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameWriter {
    /// Empty buffers.
    pub const fn new() -> Self {
        Self {
            scratch: [0; MAX_FRAME],
            out: [0; MAX_FRAME],
        }
    }

    /// `message` as one frame (delimiter included), valid until the next call.
    pub fn encode<T: Serialize>(&mut self, message: &T) -> Result<&[u8], FrameError> {
        encode(message, &mut self.scratch, &mut self.out)
    }

    /// `payload` framed as it is (see [`encode_payload`]), valid until the next call.
    pub fn encode_payload(&mut self, payload: &[u8]) -> Result<&[u8], FrameError> {
        encode_payload(payload, &mut self.scratch, &mut self.out)
    }
}

/// Reassembles frames from a byte stream, one byte (or slice) at a time, in a fixed buffer.
pub struct FrameReader<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflowed: bool,
}

impl<const N: usize> Default for FrameReader<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// What one byte completed.
#[derive(Debug, PartialEq)]
pub enum Feed<'a> {
    /// Nothing yet.
    Pending,
    /// A frame whose checksum matched: its payload (the postcard bytes).
    Frame(&'a [u8]),
    /// A frame that was rejected.
    Error(FrameError),
}

impl<const N: usize> FrameReader<N> {
    /// An empty reader.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflowed: false,
        }
    }

    /// Takes one byte of the stream.
    pub fn push(&mut self, byte: u8) -> Feed<'_> {
        if byte != 0 {
            if self.len < N {
                self.buf[self.len] = byte;
                self.len += 1;
            } else {
                self.overflowed = true;
            }
            return Feed::Pending;
        }
        let len = core::mem::take(&mut self.len);
        if core::mem::take(&mut self.overflowed) {
            return Feed::Error(FrameError::Oversized);
        }
        if len == 0 {
            // Back-to-back delimiters: an empty frame, used to flush a line. Not an error.
            return Feed::Pending;
        }
        let decoded = match cobs::decode_in_place(&mut self.buf[..len]) {
            Ok(n) => n,
            Err(_) => return Feed::Error(FrameError::Corrupt),
        };
        if decoded < 5 {
            return Feed::Error(FrameError::Checksum);
        }
        let (payload, crc) = self.buf[..decoded].split_at(decoded - 4);
        if CRC.checksum(payload) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Feed::Error(FrameError::Checksum);
        }
        Feed::Frame(payload)
    }
}

/// Decodes a message from a frame's payload.
pub fn decode<'a, T: Deserialize<'a>>(payload: &'a [u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes(payload) {
        Ok((message, [])) => Ok(message),
        _ => Err(FrameError::Malformed),
    }
}
