//! Damage to a model file, as the file tests inflict it: a bit flipped, the file cut short, or
//! its content changed and resealed with a correct checksum so that the change reaches the
//! decoder.

use digits_core::model_file::ModelFileError;

/// The model file's checksum, as the encoders write it.
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Magic (8 bytes) and version (1 byte as a varint): what the mutations leave alone, so that
/// they reach the checksum and what it guards.
pub const HEADER: usize = 9;

/// `content` followed by its correct CRC-32: damage the checksum would refuse, made to pass it.
pub fn sealed(content: &[u8]) -> Vec<u8> {
    let mut bytes = content.to_vec();
    bytes.extend_from_slice(&CRC.checksum(content).to_le_bytes());
    bytes
}

/// The content of `file` (its checksum dropped) with `edits` applied (each `(position, xor)`,
/// positions past the header, wrapped into the content) and cut or extended (with zeros) to
/// `len` bytes after the header (`None`: as long as it was).
pub fn mutated(file: &[u8], edits: &[(usize, u8)], len: Option<usize>) -> Vec<u8> {
    let mut content = file[..file.len() - 4].to_vec();
    let body = content.len() - HEADER;
    for &(at, xor) in edits {
        content[HEADER + at % body] ^= xor;
    }
    content.resize(HEADER + len.unwrap_or(body), 0);
    content
}

/// Whether `result` is a refusal by the checksum.
pub fn refused_by_checksum<T>(result: &Result<T, ModelFileError>) -> bool {
    matches!(result, Err(ModelFileError::BadChecksum { .. }))
}

/// Asserts that `decode` (the decoder, its file dropped) refuses `bytes` with any one of its bits flipped (every `step`-th
/// bit; 1 for all).
pub fn assert_bit_flips_refused(
    bytes: &[u8],
    step: usize,
    decode: impl Fn(&[u8]) -> Result<(), ModelFileError>,
) {
    for bit in (0..bytes.len() * 8).step_by(step) {
        let mut damaged = bytes.to_vec();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            decode(&damaged).is_err(),
            "flipping bit {bit} went unnoticed"
        );
    }
}

/// Asserts that `decode` refuses every prefix of `bytes` (every `step`-th length; 1 for all)
/// as too short or by its checksum.
pub fn assert_truncations_refused(
    bytes: &[u8],
    step: usize,
    decode: impl Fn(&[u8]) -> Result<(), ModelFileError>,
) {
    for len in (0..bytes.len()).step_by(step) {
        match decode(&bytes[..len]) {
            Err(ModelFileError::TooShort { .. } | ModelFileError::BadChecksum { .. }) => {}
            Err(err) => panic!("truncated to {len}: {err:?}"),
            Ok(()) => panic!("truncated to {len}: decoded"),
        }
    }
}
