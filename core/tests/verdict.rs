//! The "not a digit" verdict: the ink's shape against an independent measurement, synthetic
//! non-digits flagged with the right reason, real digits not flagged.

use digits_core::MnistMlp;
use digits_core::pixels::normalize;
use digits_core::softmax::softmax;
use digits_core::verdict::{InkShape, Limits, Reason, Verdict};

/// The shape measured another way: on a picture padded by one pixel (so the picture's edge is
/// no special case), the perimeter as the ink/no-ink changes along rows and columns, and the
/// pieces by union-find.
fn independent(pixels: &[u8; 784]) -> InkShape {
    const P: usize = 30;
    let mut on = [[false; P]; P];
    for (i, &p) in pixels.iter().enumerate() {
        on[i / 28 + 1][i % 28 + 1] = p >= 128;
    }
    let mut perimeter = 0;
    // Changes along each row, then along each column.
    for row in &on {
        perimeter += row.windows(2).filter(|w| w[0] != w[1]).count() as u32;
    }
    for pair in on.windows(2) {
        perimeter += (0..P).filter(|&x| pair[0][x] != pair[1][x]).count() as u32;
    }
    let cells: Vec<(usize, usize)> = (0..P)
        .flat_map(|y| (0..P).map(move |x| (x, y)))
        .filter(|&(x, y)| on[y][x])
        .collect();
    let mut parent: Vec<usize> = (0..P * P).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for &(x, y) in &cells {
        for (dx, dy) in [(1, 0), (-1, 1), (0, 1), (1, 1)] {
            let (nx, ny) = ((x as isize + dx) as usize, (y as isize + dy) as usize);
            if on[ny][nx] {
                let (a, b) = (root(&mut parent, y * P + x), root(&mut parent, ny * P + nx));
                parent[a] = b;
            }
        }
    }
    let mut roots: Vec<usize> = cells
        .iter()
        .map(|&(x, y)| root(&mut parent, y * P + x))
        .collect();
    roots.sort_unstable();
    roots.dedup();
    let xs = || cells.iter().map(|c| c.0);
    let ys = || cells.iter().map(|c| c.1);
    let span = |min: Option<usize>, max: Option<usize>| match (min, max) {
        (Some(a), Some(b)) => (b - a + 1) as u32,
        _ => 0,
    };
    InkShape {
        mass: pixels.iter().map(|&p| f64::from(p)).sum::<f64>() as f32 / 255.0,
        area: cells.len() as u32,
        perimeter,
        width: span(xs().min(), xs().max()),
        height: span(ys().min(), ys().max()),
        pieces: roots.len() as u32,
    }
}

fn assert_same(pixels: &[u8; 784]) {
    let (a, b) = (InkShape::measure(pixels), independent(pixels));
    assert!(
        (a.mass - b.mass).abs() <= 1e-3 * b.mass.max(1.0),
        "{a:?} vs {b:?}"
    );
    assert_eq!(
        (a.area, a.perimeter, a.width, a.height, a.pieces),
        (b.area, b.perimeter, b.width, b.height, b.pieces),
    );
}

#[test]
fn the_shape_equals_an_independent_measurement() {
    let slice = testkit::slice();
    for img in slice.test.images.iter().chain(&slice.train.images[..200]) {
        assert_same(img);
    }
    for img in testkit::random_images(3, 200) {
        assert_same(&img);
    }
    // Ink on the picture's edges and corners.
    let mut edges = [0u8; 784];
    for i in 0..28 {
        edges[i] = 255;
        edges[i * 28 + 27] = 200;
    }
    edges[27 * 28] = 255;
    assert_same(&edges);
    assert_same(&[0u8; 784]);
    assert_same(&[255u8; 784]);
}

/// A picture with a filled rectangle of ink, `x0..x1` by `y0..y1`.
fn rect(x0: usize, y0: usize, x1: usize, y1: usize) -> [u8; 784] {
    let mut p = [0u8; 784];
    for y in y0..y1 {
        for x in x0..x1 {
            p[y * 28 + x] = 255;
        }
    }
    p
}

/// The ink's verdict (a confident network, so only the ink can flag it).
fn ink_reason(pixels: &[u8; 784]) -> Option<Reason> {
    let mut confident = [0.0f32; 10];
    confident[8] = 1.0;
    Verdict::judge(pixels, &confident, &Limits::MNIST).reason()
}

#[test]
fn synthetic_non_digits_are_flagged_with_the_right_reason() {
    assert_eq!(ink_reason(&[0u8; 784]), Some(Reason::Blank));
    // A 3x3 dot, as it comes when nobody fits it to the box.
    assert_eq!(
        ink_reason(&rect(13, 13, 16, 16)),
        Some(Reason::TooLittleInk)
    );
    // The same dot fitted to 20x20, as predict prepares a photo of it: a solid square.
    assert_eq!(ink_reason(&rect(4, 4, 24, 24)), Some(Reason::Solid));
    // Ruled paper: thin strokes, but more of them than any digit has.
    let mut ruled = [0u8; 784];
    for y in (0..28).step_by(2) {
        ruled[y * 28..y * 28 + 28].fill(255);
    }
    assert_eq!(ink_reason(&ruled), Some(Reason::TooMuchInk));
    // A horizontal bar fitted to 20 wide.
    assert_eq!(ink_reason(&rect(4, 12, 24, 15)), Some(Reason::Flat));
    // Noise: a fifth of the pixels lit at random.
    for img in testkit::random_images(7, 20) {
        assert_eq!(ink_reason(&img), Some(Reason::Scattered));
    }
    // A vertical bar is a 1: not flagged.
    assert_eq!(ink_reason(&rect(13, 4, 16, 24)), None);
}

#[test]
fn an_unsure_network_is_flagged_and_named() {
    let mut p = [0.1f32; 10];
    p[4] = 0.3;
    let one = rect(13, 4, 16, 24);
    assert_eq!(
        Verdict::judge(&one, &p, &Limits::MNIST),
        Verdict::NotADigit(Reason::Unsure {
            digit: 4,
            probability: 0.3
        })
    );
    let text = Reason::Unsure {
        digit: 4,
        probability: 0.3,
    }
    .to_string();
    assert!(text.contains("at best 4, 30%"), "{text}");
}

#[test]
fn real_digits_are_not_flagged() {
    let bytes = std::fs::read(testkit::workspace().join("firmware/models/mnist.digits")).unwrap();
    let mut net = Box::new(MnistMlp::zeros());
    digits_core::model_file::decode(&bytes)
        .unwrap()
        .load_into(&mut *net)
        .unwrap();
    let slice = testkit::slice();
    let images: Vec<&[u8; 784]> = slice
        .test
        .images
        .iter()
        .chain(&slice.train.images)
        .collect();
    let flagged = testkit::count_flagged(images.iter().enumerate(), |(i, img)| {
        let mut x = [0.0f32; 784];
        normalize(img, &mut x);
        let mut p = [0.0f32; 10];
        softmax(&net.logits(&x), &mut p);
        Verdict::judge(img, &p, &Limits::MNIST)
            .reason()
            .map(|r| (i, r))
    });
    // The full test set's figure is at most 1% (`digits bench --mode not-a-digit`); on 1,500
    // digits allow a little sampling noise.
    assert!(
        flagged.percent() <= 1.5,
        "{} of {} real digits flagged: {:?}",
        flagged.count(),
        flagged.judged,
        flagged.flags
    );
}
