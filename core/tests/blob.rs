//! The data blob: what the writer writes the reader takes back whole; every way of not being a
//! blob is refused with its own message (the words the device logs).

use digits_core::blob::{
    BLOB_ADDRESS, Blob, BlobError, Contents, END_MARK, FLAG_LABELS, FLAG_LOGITS, HEADER_LEN,
    Header, IMAGE_LEN, MAGIC, WriteError,
};

/// Three distinct images: image `i` is all `i + 1`, but for a marker byte at pixel `i`.
fn images() -> [[u8; IMAGE_LEN]; 3] {
    core::array::from_fn(|i| {
        let mut im = [i as u8 + 1; IMAGE_LEN];
        im[i] = 0xEE;
        im
    })
}

/// A blob of `images()` with labels 7, 2, 1 and logits printed.
fn good() -> Vec<u8> {
    let images = images();
    let contents = Contents {
        images: &[&images],
        labels: Some(&[&[7, 2, 1]]),
        print_logits: true,
    };
    let mut bytes = Vec::new();
    contents
        .write(|piece| bytes.extend_from_slice(piece))
        .expect("valid contents");
    bytes
}

#[test]
fn a_written_blob_has_this_layout() {
    let bytes = good();
    let images = images();
    assert_eq!(&bytes[..8], b"DIGITSEV");
    assert_eq!(&bytes[8..12], &3u32.to_le_bytes());
    assert_eq!(&bytes[12..16], &(FLAG_LABELS | FLAG_LOGITS).to_le_bytes());
    assert_eq!(&bytes[16..16 + 3 * IMAGE_LEN], images.as_flattened());
    assert_eq!(&bytes[16 + 3 * IMAGE_LEN..][..3], &[7, 2, 1]);
    assert_eq!(&bytes[bytes.len() - 8..], b"DIGITEND");
    assert_eq!(bytes.len(), HEADER_LEN + 3 * (IMAGE_LEN + 1) + 8);
    assert_eq!((MAGIC, END_MARK), (*b"DIGITSEV", *b"DIGITEND"));
    assert_eq!(BLOB_ADDRESS, 0x2100_0000, "the mps2-an386's PSRAM");
}

#[test]
fn round_trip_in_pieces_through_a_sink_and_a_buffer() {
    let images = images();
    // Two sets laid end to end, their labels cut elsewhere than their images.
    let contents = Contents {
        images: &[&images[..1], &images[1..]],
        labels: Some(&[&[7, 2], &[1]]),
        print_logits: false,
    };
    let header = contents.header().unwrap();
    assert_eq!(
        header,
        Header {
            count: 3,
            flags: FLAG_LABELS
        }
    );
    let mut sunk = Vec::new();
    assert_eq!(
        contents.write(|piece| sunk.extend_from_slice(piece)),
        Ok(header)
    );
    assert_eq!(sunk.len() as u64, header.blob_len());

    let mut buffer = vec![0xAA; sunk.len() + 100];
    let written = contents.write_into(&mut buffer).unwrap();
    assert_eq!(written, &sunk[..]);

    // The reader takes it back from memory that goes on past the blob (as the PSRAM does).
    let blob = Blob::parse(&buffer).unwrap();
    assert_eq!(blob.header, header);
    assert_eq!(blob.images, &images);
    assert_eq!(blob.labels, Some(&[7u8, 2, 1][..]));

    // Without labels.
    let unlabeled = Contents {
        images: &[&images],
        labels: None,
        print_logits: true,
    };
    let mut bytes = Vec::new();
    unlabeled
        .write(|piece| bytes.extend_from_slice(piece))
        .unwrap();
    let blob = Blob::parse(&bytes).unwrap();
    assert_eq!(blob.header.flags, FLAG_LOGITS);
    assert_eq!((blob.images, blob.labels), (&images[..], None));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = good();
    for len in 0..bytes.len() {
        let err = Blob::parse(&bytes[..len]).expect_err("a truncated blob");
        let expected = if len < HEADER_LEN {
            BlobError::NoMagic
        } else {
            BlobError::TooShort
        };
        assert_eq!(err, expected, "truncated to {len} bytes");
    }
    assert!(Blob::parse(&bytes).is_ok());
}

#[test]
fn each_defect_is_refused_with_its_message() {
    let bytes = good();
    let patched = |at: usize, with: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + with.len()].copy_from_slice(with);
        b
    };
    let labels_at = HEADER_LEN + 3 * IMAGE_LEN;
    let cases = [
        (
            "wrong magic",
            patched(0, b"X"),
            "bad data blob: it does not start with \"DIGITSEV\"",
        ),
        (
            "unknown flag",
            patched(12, &(FLAG_LABELS | 1 << 7).to_le_bytes()),
            "bad data blob: unknown flags (known: 1 labels, 2 logits)",
        ),
        (
            "count 0",
            patched(8, &0u32.to_le_bytes()),
            "bad data blob: it holds no images (count 0)",
        ),
        (
            "count one too many",
            patched(8, &4u32.to_le_bytes()),
            "bad data blob: count says more images than the memory holds",
        ),
        (
            "count one too few",
            patched(8, &2u32.to_le_bytes()),
            "bad data blob: no \"DIGITEND\" where its count says it ends (truncated, or a wrong count)",
        ),
        (
            "wrong end mark",
            patched(bytes.len() - 1, b"X"),
            "bad data blob: no \"DIGITEND\" where its count says it ends (truncated, or a wrong count)",
        ),
        (
            "label 10",
            patched(labels_at + 1, &[10]),
            "bad data blob: a label is not a digit 0-9",
        ),
    ];
    for (what, bytes, message) in cases {
        let err = Blob::parse(&bytes).expect_err(what);
        assert_eq!(err.to_string(), message, "{what}");
        // The firmware logs the same words.
        assert_eq!(<&str>::from(err), message, "{what}");
    }
    // A header alone is checked the same way.
    let bad_magic = patched(0, b"X");
    let head: &[u8; HEADER_LEN] = bad_magic[..HEADER_LEN].try_into().unwrap();
    assert_eq!(Header::parse(head), Err(BlobError::NoMagic));
}

#[test]
fn the_writer_refuses_what_the_reader_would() {
    let images = images();
    let refused = |contents: Contents<'_>| {
        let mut written = 0;
        let err = contents.write(|_| written += 1).expect_err("refused");
        assert_eq!(written, 0, "nothing written for {err}");
        let mut buffer = [0u8; 4 * IMAGE_LEN];
        assert_eq!(contents.write_into(&mut buffer), Err(err));
        err
    };
    assert_eq!(refused(contents(&[], None)), WriteError::NoImages);
    assert_eq!(refused(contents(&[&[]], None)), WriteError::NoImages);
    assert_eq!(
        refused(contents(&[&images], Some(&[&[1, 2]]))),
        WriteError::LabelCount
    );
    assert_eq!(
        refused(contents(&[&images], Some(&[&[1, 2, 10]]))),
        WriteError::BadLabel
    );
    let mut short = [0u8; HEADER_LEN + 3 * IMAGE_LEN + 8 - 1];
    assert_eq!(
        contents(&[&images], None).write_into(&mut short),
        Err(WriteError::BufferTooSmall)
    );
}

/// Contents without logits printed.
fn contents<'a>(
    images: &'a [&'a [[u8; IMAGE_LEN]]],
    labels: Option<&'a [&'a [u8]]>,
) -> Contents<'a> {
    Contents {
        images,
        labels,
        print_logits: false,
    }
}
