//! The "not a digit" verdict measured on the four sets: at most 1% of MNIST's test
//! digits (as they are, and drawn as photos) flagged; every blank page, dot and noise flagged
//! (what the ink checks are for); at least 95% of Fashion-MNIST's test images and of all the
//! generated non-digits (what the embedded detector is for).
//! Needs the full MNIST and Fashion-MNIST (Debian's dataset-fashion-mnist).

use std::path::Path;

use digits_core::MnistMlp;
use digits_core::verdict::Limits;
use host::data::Split;
use host::evaluate::verdict_bench::{SetResult, measure};

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

fn split(dir: &Path) -> Split {
    let test = testkit::read_dir(dir).test;
    Split {
        images: test.images,
        labels: test.labels,
    }
}

#[test]
fn the_verdict_meets_its_targets_on_the_four_sets() {
    let Some(mnist) = testkit::full_mnist("not_a_digit: the four sets") else {
        return;
    };
    let fashion = Path::new(FASHION);
    let here = testkit::idx_path(fashion, testkit::TEST_IMAGES).is_some();
    if !testkit::needs(
        here,
        "not_a_digit: the four sets",
        "Fashion-MNIST is not in /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)",
    ) {
        return;
    }
    let bytes = std::fs::read(testkit::workspace().join("firmware/models/mnist.digits")).unwrap();
    let mut net = Box::new(MnistMlp::zeros());
    digits_core::model_file::decode(&bytes)
        .unwrap()
        .load_into(&mut *net)
        .unwrap();
    let sets = measure(&*net, &split(&mnist), &split(fashion), 1);
    let limit = Limits::MNIST.min_confidence;
    let find =
        |prefix: &str| -> &SetResult { sets.iter().find(|s| s.name.starts_with(prefix)).unwrap() };
    // Counted here, not by the bench's own count.
    let flagged = |s: &SetResult| {
        testkit::count_flagged(&s.judged, |j| j.flagged(limit).then_some(())).percent()
    };
    for s in &sets {
        println!("{:<48} {:>6.2}%", s.name, flagged(s));
    }
    for prefix in ["MNIST test digits (", "MNIST test digits as photos"] {
        let s = find(prefix);
        let p = flagged(s);
        assert!(p <= 1.0, "{}: {p:.2}% flagged, at most 1% wanted", s.name);
    }
    let wanted = [
        "Fashion-MNIST test (".to_string(),
        "generated non-digits".to_string(),
    ];
    let kinds = ["blank", "dot", "noise"].map(|k| format!("  generated: {k} "));
    for prefix in wanted.iter().chain(&kinds) {
        let s = find(prefix);
        let p = flagged(s);
        assert!(
            p >= 95.0,
            "{}: {p:.2}% flagged, at least 95% wanted",
            s.name
        );
    }
}
