//! The one CRC-32 (ISO-HDLC, as zip and PNG compute it) of every format here: frames, model
//! files, model slots. One static, so that a device carries its table once.

/// CRC-32/ISO-HDLC.
pub static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
