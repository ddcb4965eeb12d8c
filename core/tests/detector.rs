//! The "not a digit" detector's file and forward pass.

use digits_core::detector::{DIGIT, Detector, DetectorNet, NOT_A_DIGIT};
use digits_core::model_file::{self, Metadata, ModelFileError};
use digits_core::verdict::{Limits, Reason, Verdict};

fn detector() -> Detector {
    Detector {
        net: DetectorNet::seeded(7),
    }
}

fn encoded(d: &Detector) -> Vec<u8> {
    let metadata = Metadata {
        dataset: "test",
        test_accuracy: None,
        seed: 7,
        epochs: 0,
        options: "",
    };
    let mut buf = vec![0u8; model_file::encoded_len_bound(784 * 32 + 32 + 64 + 2, 64)];
    let len = model_file::encode(&d.net, &metadata, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

fn picture() -> [u8; 784] {
    core::array::from_fn(|i| ((i * 37) % 256) as u8)
}

#[test]
fn the_detector_file_round_trips() {
    let d = detector();
    let back = Detector::decode(&encoded(&d)).unwrap();
    assert_eq!(back, d);
    assert_eq!(back.unlikeness(&picture()), d.unlikeness(&picture()));
}

#[test]
fn a_corrupted_detector_file_is_refused_clearly() {
    let mut bytes = encoded(&detector());
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let err = Detector::decode(&bytes).unwrap_err();
    assert!(matches!(err, ModelFileError::BadChecksum { .. }), "{err:?}");
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn another_shape_is_not_a_detector() {
    let mut buf = vec![0u8; 200_000];
    let len = model_file::encode(
        &digits_core::Mlp::<784, 16, 2>::seeded(1),
        &Metadata {
            dataset: "test",
            test_accuracy: None,
            seed: 1,
            epochs: 0,
            options: "",
        },
        &mut buf,
    )
    .unwrap();
    let err = Detector::decode(&buf[..len]).unwrap_err();
    assert!(
        matches!(err, ModelFileError::WrongArchitecture { .. }),
        "{err:?}"
    );
}

#[test]
fn unlikeness_equals_an_independent_computation() {
    let d = detector();
    let p = picture();
    let x: Vec<f64> = p.iter().map(|&v| f64::from(v) / 255.0).collect();
    let (w1, b1) = (&d.net.hidden.w, &d.net.hidden.b);
    let (w2, b2) = (&d.net.output.w, &d.net.output.b);
    let h: Vec<f64> = (0..32)
        .map(|j| {
            let s: f64 =
                (0..784).map(|i| x[i] * f64::from(w1[i][j])).sum::<f64>() + f64::from(b1[j]);
            s.max(0.0)
        })
        .collect();
    let z: Vec<f64> = (0..2)
        .map(|k| (0..32).map(|j| h[j] * f64::from(w2[j][k])).sum::<f64>() + f64::from(b2[k]))
        .collect();
    let (digit, not) = (z[usize::from(DIGIT)], z[usize::from(NOT_A_DIGIT)]);
    let expected = 1.0 / (1.0 + (digit - not).exp());
    let got = f64::from(d.unlikeness(&p));
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
}

#[test]
fn the_verdict_gives_the_detector_reason_past_its_limit() {
    assert_eq!(
        Verdict::judge_unlikeness(0.4, &Limits::MNIST),
        Verdict::Digit
    );
    assert_eq!(
        Verdict::judge_unlikeness(0.9, &Limits::MNIST),
        Verdict::NotADigit(Reason::Unlike { probability: 0.9 })
    );
    assert!(
        Reason::Unlike { probability: 0.9 }
            .to_string()
            .contains("unlike any digit")
    );
}
