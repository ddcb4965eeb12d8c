//! The compact network's model file (format version 2, and 3 with convolution layers): round
//! trip, every kind of damage refused, version-1 files still read, random input never panics.

mod common;

use common::compact::{quantized, quantized_conv, view};
use common::damage::{
    HEADER, assert_bit_flips_refused, assert_truncations_refused, mutated, refused_by_checksum,
    sealed,
};
use digits_core::compact::CompactError;
use digits_core::compact_file::{AnyModelFile, compact_len_bound, decode_any, encode_compact};
use digits_core::lowbit::Bits;
use digits_core::model_file::{self, Metadata, ModelFileError, decode, encoded_len_bound};
use digits_core::{Mlp, Params};
use proptest::prelude::*;

fn metadata() -> Metadata<'static> {
    Metadata {
        dataset: "mnist",
        test_accuracy: Some(0.9901),
        seed: 2,
        epochs: 40,
        options: r#"{"arch":"16x16-32-24-16-10"}"#,
    }
}

fn encoded(bits: [Bits; 4], seed: u64) -> Vec<u8> {
    let (_, _, owned) = quantized(bits, seed);
    let model = view(16, &owned);
    let mut buf = vec![0u8; compact_len_bound(&model, 64)];
    let n = encode_compact(&model, &metadata(), &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn encoded_conv(bits: [Bits; 4], seed: u64) -> Vec<u8> {
    let (_, _, owned) = quantized_conv(bits, seed);
    let model = view(16, &owned);
    let mut buf = vec![0u8; compact_len_bound(&model, 64)];
    let n = encode_compact(&model, &metadata(), &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Decodes and, if it decodes, runs the model on an image: never a panic.
fn check_decoded(bytes: &[u8]) -> Result<(), ModelFileError> {
    if let AnyModelFile::Compact(c) = decode_any(bytes)? {
        let mut logits = [0.0f32; 256];
        c.model.logits_of_image(&[200; 784], &mut logits);
    }
    Ok(())
}

#[test]
fn round_trip_is_exact() {
    for bits in [
        [Bits::Four; 4],
        [Bits::Two; 4],
        [Bits::Two, Bits::Four, Bits::Four, Bits::Two],
    ] {
        let (_, _, owned) = quantized(bits, 5);
        let bytes = encoded(bits, 5);
        assert_eq!(&bytes[..9], b"DIGITSNN\x02");
        let AnyModelFile::Compact(file) = decode_any(&bytes).unwrap() else {
            panic!("a compact file");
        };
        assert_eq!(file.model, view(16, &owned));
        assert_eq!(file.metadata, metadata());
        // What a file costs beyond the weights: the envelope, names and metadata.
        println!(
            "{bits:?}: {} bytes of weights, {} bytes of file",
            file.model.weight_bytes(),
            bytes.len()
        );
    }
}

#[test]
fn every_single_bit_flip_and_truncation_is_detected() {
    let bytes = encoded([Bits::Two; 4], 6);
    assert_bit_flips_refused(&bytes, 1, |b| decode_any(b).map(drop));
    assert_truncations_refused(&bytes, 1, |b| decode_any(b).map(drop));
}

#[test]
fn resealed_damage_is_refused_by_what_it_breaks() {
    let bytes = encoded([Bits::Four; 4], 7);
    let content = &bytes[..bytes.len() - 4];
    // After the header: side (1 byte), layer count (1), then per layer inputs and outputs
    // (u16 varints: 256 takes 2 bytes, 32 one) and bits (1).
    assert_eq!(content[HEADER], 16);
    assert_eq!(content[HEADER + 1], 4);
    let first_bits = HEADER + 2 + 2 + 1;
    assert_eq!(content[first_bits], 4);

    let mut three_bits = content.to_vec();
    three_bits[first_bits] = 3;
    assert_eq!(
        decode_any(&sealed(&three_bits)).unwrap_err(),
        ModelFileError::BadBits { layer: 1, bits: 3 }
    );
    let message = ModelFileError::BadBits { layer: 1, bits: 3 }.to_string();
    assert!(
        message.contains("2 or 4") && message.contains("digits train --arch"),
        "{message}"
    );

    let mut two_bits = content.to_vec();
    two_bits[first_bits] = 2;
    assert_eq!(
        decode_any(&sealed(&two_bits)).unwrap_err(),
        ModelFileError::BadCompact(CompactError::Size { index: 0 })
    );

    let mut side = content.to_vec();
    side[HEADER] = 15;
    assert_eq!(
        decode_any(&sealed(&side)).unwrap_err(),
        ModelFileError::BadCompact(CompactError::Input)
    );

    // The last bytes before the checksum are the last logit scale (an f32): make it negative.
    let mut negative = content.to_vec();
    let last = negative.len() - 1;
    negative[last] ^= 0x80;
    assert_eq!(
        decode_any(&sealed(&negative)).unwrap_err(),
        ModelFileError::BadCompact(CompactError::Range { index: 3 })
    );

    let mut newer = content.to_vec();
    newer[8] = 4;
    let err = decode_any(&sealed(&newer)).unwrap_err();
    assert_eq!(err, ModelFileError::UnsupportedVersion { found: 4 });
    assert!(err.to_string().contains("update digits"), "{err}");
}

#[test]
fn convolutions_round_trip_as_version_3_and_dense_networks_stay_version_2() {
    for bits in [
        [Bits::Four; 4],
        [Bits::Four, Bits::Four, Bits::Two, Bits::Four],
    ] {
        let (_, _, owned) = quantized_conv(bits, 5);
        let bytes = encoded_conv(bits, 5);
        assert_eq!(&bytes[..9], b"DIGITSNN\x03");
        let AnyModelFile::Compact(file) = decode_any(&bytes).unwrap() else {
            panic!("a compact file");
        };
        assert_eq!(file.model, view(16, &owned));
        assert!(file.model.layers[0].windows.is_some());
        let mut arch = String::new();
        file.model.write_arch(&mut arch).unwrap();
        assert_eq!(arch, "16x16-w8s4-12-6-16-10");
    }
    assert_eq!(&encoded([Bits::Four; 4], 5)[..9], b"DIGITSNN\x02");
    let conv = encoded_conv([Bits::Two; 4], 6);
    assert_bit_flips_refused(&conv, 1, |b| decode_any(b).map(drop));
    assert_truncations_refused(&conv, 1, |b| decode_any(b).map(drop));
}

#[test]
fn windows_that_do_not_fit_are_refused() {
    let bytes = encoded_conv([Bits::Four; 4], 7);
    let content = &bytes[..bytes.len() - 4];
    // After the header: side, layer count, then the first layer: inputs (256: 2 bytes),
    // outputs (108: 1), bits, windows (Some: 1, side, channels, kernel, stride).
    let windows = HEADER + 2 + 2 + 1 + 1;
    assert_eq!(&content[windows..windows + 5], &[1, 16, 1, 8, 4]);
    let refused = |at: usize, value: u8, expected: ModelFileError| {
        let mut bad = content.to_vec();
        bad[at] = value;
        assert_eq!(
            decode_any(&sealed(&bad)).unwrap_err(),
            expected,
            "byte {at} = {value}"
        );
    };
    let shape = || ModelFileError::BadCompact(CompactError::Shape { index: 0 });
    refused(windows + 1, 15, shape()); // the map is not the image
    refused(windows + 3, 17, shape()); // a window larger than the map
    refused(windows + 3, 0, shape()); // no window
    refused(windows + 4, 0, shape()); // no step
    refused(windows + 4, 2, shape()); // 25 windows: the outputs do not match
    // No windows (the bytes after no longer parse as layers), or not an Option at all.
    refused(windows, 0, ModelFileError::Malformed);
    refused(windows, 2, ModelFileError::Malformed);
}

#[test]
fn version_one_files_still_read_and_readers_of_version_one_say_what_a_compact_file_is() {
    let model = Mlp::<12, 6, 3, f32>::seeded(3);
    let mut buf = vec![0u8; encoded_len_bound(model.num_params(), 64)];
    let n = model_file::encode(&model, &metadata(), &mut buf).unwrap();
    let AnyModelFile::Mlp(file) = decode_any(&buf[..n]).unwrap() else {
        panic!("a version-1 file");
    };
    let mut back = Mlp::<12, 6, 3, f32>::zeros();
    file.load_into(&mut back).unwrap();
    assert_eq!(back, model);

    let err = decode(&encoded([Bits::Four; 4], 8)).unwrap_err();
    assert_eq!(err, ModelFileError::CompactModel);
    assert!(err.to_string().contains("compact network"), "{err}");
}

#[test]
fn a_model_that_does_not_check_is_not_written() {
    let (_, _, mut owned) = quantized([Bits::Four; 4], 9);
    owned[2].rescale[2] = 0; // shift 0
    let mut buf = vec![0u8; 1 << 16];
    assert_eq!(
        encode_compact(&view(16, &owned), &metadata(), &mut buf),
        Err(ModelFileError::BadCompact(CompactError::Range { index: 2 }))
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = check_decoded(&bytes);
    }

    /// Random bytes after the magic and version 2 or 3, resealed: they reach the decoder.
    #[test]
    fn resealed_random_bytes_never_panic(
        version in 2..=3u8,
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut content = b"DIGITSNN".to_vec();
        content.push(version);
        content.extend(tail);
        let result = check_decoded(&sealed(&content));
        prop_assert!(!refused_by_checksum(&result), "{:?}", result);
    }

    /// A valid file changed in up to 8 bytes and cut or extended, resealed: decoded and run,
    /// or refused, never a panic.
    #[test]
    fn resealed_mutations_of_a_valid_file_never_panic(
        edits in prop::collection::vec((any::<usize>(), 1..=255u8), 0..8),
        len in prop_oneof![Just(None), (0..8000usize).prop_map(Some)],
    ) {
        static VALID: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
        let files = VALID.get_or_init(|| {
            let bits = [Bits::Two, Bits::Four, Bits::Four, Bits::Two];
            [encoded(bits, 10), encoded_conv(bits, 10)]
        });
        for bytes in files {
            let content = mutated(bytes, &edits, len);
            let result = check_decoded(&sealed(&content));
            prop_assert!(!refused_by_checksum(&result), "{:?}", result);
        }
    }
}
