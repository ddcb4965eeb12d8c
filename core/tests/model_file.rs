//! The model file: round trip, and every kind of damage refused with the right error.

use digits_core::Mlp;
use digits_core::model_file::{
    Architecture, FORMAT_VERSION, Metadata, ModelFileError, decode, encode, encoded_len_bound,
};
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
    let bytes = encoded(&Small::seeded(4));
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let result = decode(&damaged);
        assert!(result.is_err(), "flipping bit {bit} went unnoticed");
    }
}

#[test]
fn every_truncation_is_detected() {
    let bytes = encoded(&Small::seeded(5));
    for len in 0..bytes.len() {
        let err = decode(&bytes[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                ModelFileError::TooShort { .. } | ModelFileError::BadChecksum { .. }
            ),
            "truncated to {len}: {err:?}"
        );
    }
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
    newer[8] = (FORMAT_VERSION + 1) as u8;
    let err = decode(&newer).unwrap_err();
    assert_eq!(
        err,
        ModelFileError::UnsupportedVersion {
            found: FORMAT_VERSION + 1
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

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(file) = decode(&bytes) {
            let _ = file.load_into(&mut Small::zeros());
        }
    }

    #[test]
    fn random_bytes_after_the_magic_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = b"DIGITSNN\x01".to_vec();
        bytes.extend(tail);
        if let Ok(file) = decode(&bytes) {
            let _ = file.load_into(&mut Small::zeros());
        }
    }
}
