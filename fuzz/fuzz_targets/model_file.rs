//! The model-file decoder on arbitrary bytes: never a panic; a file that decodes either loads
//! into a model of its precision or is refused, and a loaded model's weights are finite.
#![no_main]

use digits_core::model_file::{self, Precision};
use digits_core::{MnistMlp, MnistQuant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = model_file::decode(data) else {
        return;
    };
    match file.precision {
        Precision::F32 => {
            let mut m: Box<MnistMlp> = Box::new(MnistMlp::zeros());
            if file.load_into(&mut *m).is_ok() {
                assert!(m.hidden.w.as_flattened().iter().all(|v| v.is_finite()));
            }
            assert!(file.load_int8_into(&mut *Box::new(MnistQuant::zeroed())).is_err());
        }
        Precision::Int8 => {
            let mut q = Box::new(MnistQuant::zeroed());
            if file.load_int8_into(&mut *q).is_ok() {
                assert!(q.w1.as_flattened().iter().all(|&c| c != -128));
                // A loaded model runs.
                let _ = q.logits(&[255; 784]);
            }
        }
    }
});
