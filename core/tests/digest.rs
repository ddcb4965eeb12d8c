//! The digests against FNV-1a's published test vectors and against FNV-1a written out here
//! over the model file's tensor bytes.

use digits_core::digest::{Fnv64, int8_digest, output_digest, params_digest};
use digits_core::{MnistMlp, MnistQuant, Params, Rng};

/// FNV-1a 64 of `bytes`, written out independently of the crate's.
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[test]
fn fnv64_gives_the_published_test_vectors() {
    // From the FNV reference (Fowler, Noll, Vo: test vectors for FNV-1a 64).
    let digest = |bytes: &[u8]| {
        let mut h = Fnv64::new();
        h.write(bytes);
        h.finish()
    };
    assert_eq!(digest(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(digest(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(digest(b"foobar"), 0x8594_4171_f739_67e8);
    // Pieces or one piece: the same digest.
    let mut h = Fnv64::default();
    h.write(b"foo");
    h.write(b"bar");
    assert_eq!(h.finish(), digest(b"foobar"));
    // f32s as their little-endian bits.
    let mut h = Fnv64::new();
    h.write_f32s(&[1.0, -0.0]);
    assert_eq!(h.finish(), fnv1a([0, 0, 0x80, 0x3f, 0, 0, 0, 0x80]));
}

#[test]
fn model_digests_are_fnv1a_over_the_tensors_in_file_order() {
    let mut model = Box::new(MnistMlp::zeros());
    model.init(&mut Rng::new(3));
    let bits = |values: &[f32]| -> Vec<u8> {
        values
            .iter()
            .flat_map(|v| v.to_bits().to_le_bytes())
            .collect()
    };
    let mut file_order = Vec::new();
    for k in 0..model.tensor_count() {
        file_order.extend(bits(model.tensor(k).data));
    }
    assert_eq!(params_digest(&model), fnv1a(file_order));
    let output = [bits(model.output.w.as_flattened()), bits(&model.output.b)].concat();
    assert_eq!(output_digest(&model.output), fnv1a(output));

    let mut q = Box::new(MnistQuant::zeroed());
    q.w1[0][1] = -3;
    q.b1[2] = -70_000;
    q.m1[3] = 12345;
    q.shift1[4] = 9;
    q.w2[5][6] = 127;
    q.b2[7] = 42;
    q.out_scale[8] = 0.25;
    q.hidden_scale = 1.5;
    let le = |v: &[i32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let int8_file_order = [
        q.w1.as_flattened().iter().map(|&c| c as u8).collect(),
        le(&q.b1),
        le(&q.m1),
        le(&q.shift1),
        q.w2.as_flattened().iter().map(|&c| c as u8).collect(),
        le(&q.b2),
        bits(&q.out_scale),
        bits(&[q.hidden_scale]),
    ]
    .concat();
    assert_eq!(int8_digest(&q), fnv1a(int8_file_order));
}
