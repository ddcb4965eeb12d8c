//! The model file: round trip, and every kind of damage refused with the right error.

mod common;

use common::damage::{
    HEADER, assert_bit_flips_refused, assert_truncations_refused, mutated, refused_by_checksum,
    sealed,
};
use digits_core::model_file::{
    Architecture, Metadata, ModelFileError, WINDOWS_VERSION, decode, encode, encoded_len_bound,
};
use digits_core::{Mlp, Params};
use proptest::prelude::*;

type Small = Mlp<12, 6, 3, f32>;

fn metadata() -> Metadata<'static> {
    Metadata {
        dataset: "mnist",
        test_accuracy: Some(0.9831),
        seed: 7,
        epochs: 20,
        options: r#"{"lr":0.05}"#,
    }
}

fn encoded(model: &Small) -> Vec<u8> {
    let meta = metadata();
    let mut buf = vec![0u8; encoded_len_bound(12 * 6 + 6 + 6 * 3 + 3, meta.options.len() + 16)];
    let n = encode(model, &meta, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn round_trip_is_exact() {
    let model = Small::seeded(3);
    let bytes = encoded(&model);
    assert_eq!(&bytes[..8], b"DIGITSNN");
    let file = decode(&bytes).unwrap();
    assert_eq!(file.metadata, metadata());
    assert_eq!(
        file.architecture,
        Architecture {
            input: 12,
            hidden: 6,
            output: 3
        }
    );
    let mut back = Small::zeros();
    file.load_into(&mut back).unwrap();
    assert_eq!(back, model);
}

#[test]
fn every_single_bit_flip_is_detected() {
    assert_bit_flips_refused(&encoded(&Small::seeded(4)), 1, |b| decode(b).map(drop));
}

#[test]
fn every_truncation_is_detected() {
    assert_truncations_refused(&encoded(&Small::seeded(5)), 1, |b| decode(b).map(drop));
}

#[test]
fn wrong_magic_version_architecture_and_nan_say_what_to_do() {
    let model = Small::seeded(6);
    let bytes = encoded(&model);

    let mut png = bytes.clone();
    png[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
    let err = decode(&png).unwrap_err();
    assert!(matches!(err, ModelFileError::BadMagic { .. }));
    assert!(err.to_string().contains("not a digits model file"), "{err}");

    let mut newer = bytes.clone();
    // Versions 2 and 3 are the compact networks'; 4 is unknown.
    newer[8] = (WINDOWS_VERSION + 1) as u8;
    let err = decode(&newer).unwrap_err();
    assert_eq!(
        err,
        ModelFileError::UnsupportedVersion {
            found: WINDOWS_VERSION + 1
        }
    );
    assert!(err.to_string().contains("re-export"), "{err}");

    let file = decode(&bytes).unwrap();
    let mut other = Mlp::<12, 7, 3, f32>::zeros();
    let err = file.load_into(&mut other).unwrap_err();
    assert!(err.to_string().contains("12-6-3 but 12-7-3"), "{err}");
    assert_eq!(other, Mlp::zeros(), "untouched on error");

    let mut diverged = model.clone();
    diverged.output.w[2][1] = f32::NAN;
    let bytes = encoded(&diverged);
    let err = decode(&bytes)
        .unwrap()
        .load_into(&mut Small::zeros())
        .unwrap_err();
    assert_eq!(err, ModelFileError::NonFinite { index: 2 });
}

/// What every decodable file must satisfy: it loads into the matching model or is refused with
/// an error, never a panic, and a loaded model is finite.
fn check_decoded(bytes: &[u8]) -> Result<(), ModelFileError> {
    let file = decode(bytes)?;
    let mut model = Small::zeros();
    if file.load_into(&mut model).is_ok() {
        assert!(
            model.all_finite(),
            "a loaded model with a non-finite parameter"
        );
    }
    let mut int8 = digits_core::QuantMlp::<12, 6, 3>::zeroed();
    let _ = file.load_int8_into(&mut int8);
    Ok(())
}

/// A resealed change inside the last tensor (the last bytes before the checksum are `b2`'s
/// last float, little-endian) decodes and loads a model that differs there: resealing reaches
/// the decoder and the loader behind it.
#[test]
fn a_resealed_change_of_a_weight_loads_a_different_model() {
    let mut model = Small::seeded(8);
    model.output.b = [0.5, -1.25, 3.0];
    let file = encoded(&model);
    let mut content = file[..file.len() - 4].to_vec();
    let last = content.len() - 1;
    content[last] ^= 0x80; // the sign bit
    let mut back = Small::zeros();
    decode(&sealed(&content))
        .unwrap()
        .load_into(&mut back)
        .unwrap();
    assert_eq!(back.output.b[2], -3.0);
    back.output.b[2] = 3.0;
    assert_eq!(back, model);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = check_decoded(&bytes);
    }

    /// Random bytes after the magic and version, resealed: they reach the decoder.
    #[test]
    fn resealed_random_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut content = b"DIGITSNN\x01".to_vec();
        content.extend(tail);
        let result = check_decoded(&sealed(&content));
        prop_assert!(!refused_by_checksum(&result), "{:?}", result);
    }

    /// A valid file changed in up to 8 bytes and cut or extended, resealed: it reaches the
    /// decoder (never refused by the checksum), which decodes it or refuses it, never panics.
    #[test]
    fn resealed_mutations_of_a_valid_file_never_panic(
        edits in prop::collection::vec((any::<usize>(), 1..=255u8), 0..8),
        len in prop_oneof![Just(None), (0..600usize).prop_map(Some)],
    ) {
        let content = mutated(&encoded(&Small::seeded(8)), &edits, len);
        let result = check_decoded(&sealed(&content));
        prop_assert!(!refused_by_checksum(&result), "{:?}", result);
    }

    /// The same change of one byte past the header, not resealed (the checksum included):
    /// always refused, by the checksum.
    #[test]
    fn an_unsealed_change_is_always_refused(at in any::<usize>(), xor in 1..=255u8) {
        let mut bytes = encoded(&Small::seeded(8));
        let len = bytes.len();
        bytes[HEADER + at % (len - HEADER)] ^= xor;
        let result = decode(&bytes);
        prop_assert!(refused_by_checksum(&result), "{:?}", result.map(|_| ()));
    }
}

#[test]
fn a_wrong_magic_is_named_in_hex_as_debug_hex_writes_it() {
    let bytes = *b"\x00\xffNOTAMODEL-FILE-WITH-SOME-LENGTH";
    let err = digits_core::model_file::decode(&bytes).unwrap_err();
    let expected = format!("it starts with {:02x?},", &bytes[..8]);
    assert!(err.to_string().contains(&expected), "{err} / {expected}");
}
