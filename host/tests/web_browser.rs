//! The page of `digits web` in a real browser (headless Chromium over the DevTools protocol):
//! digits drawn with the mouse answered with the host's bits, the teach flow end to end, and the
//! bad input a person can give it. Screenshots are kept in `target/web-test/`.

#[path = "common/cdp.rs"]
mod cdp;
mod common;
#[path = "common/web.rs"]
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cdp::{Browser, Page};
use common::{digits, run_ok, slice, workspace};
use digits_core::finetune::Gradient;
use digits_core::preprocess::{Gray, Prepared, prepare};
use digits_core::softmax::softmax;
use digits_core::verdict::{Limits, Reason, Verdict};
use serde_json::Value;
use web::WebServer;

/// The canvas's backing store (the page's `S`).
const SIDE: usize = 280;

fn browser(what: &str) -> Option<Browser> {
    testkit::needs(
        Browser::available(),
        what,
        "chromium not found (`apt-get install chromium`; scripts/test.sh does)",
    )
    .then(|| Browser::launch().expect("chromium starts"))
}

fn model(name: &str) -> PathBuf {
    workspace().join("firmware/models").join(name)
}

fn shots() -> PathBuf {
    let dir = workspace().join("target/web-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page with its model loaded.
fn open(browser: &Browser, server: &WebServer) -> Page {
    let page = browser.new_page(&server.url()).expect("the page loads");
    page.eval("digits.ready").expect("the model loads");
    page
}

/// Where the canvas is on the screen, to draw in canvas pixels.
struct Pad {
    left: f64,
    top: f64,
    scale: f64,
}

impl Pad {
    fn of(page: &Page) -> Pad {
        let r = page
            .eval("(r=>[r.left,r.top,r.width])(document.getElementById('pad').getBoundingClientRect())")
            .unwrap();
        let n = |i: usize| r[i].as_f64().unwrap();
        Pad {
            left: n(0),
            top: n(1),
            scale: n(2) / SIDE as f64,
        }
    }

    fn draw(&self, page: &Page, strokes: &[Vec<(f64, f64)>]) {
        for s in strokes {
            let points: Vec<(f64, f64)> = s
                .iter()
                .map(|&(x, y)| (self.left + x * self.scale, self.top + y * self.scale))
                .collect();
            page.stroke(&points).unwrap();
        }
    }
}

/// A 28x28 digit as strokes on the 280x280 canvas: each row's runs of ink (>= 128) traced
/// left to right, 10 canvas pixels per image pixel.
fn scanlines(image: &[u8; 784]) -> Vec<Vec<(f64, f64)>> {
    let mut strokes = Vec::new();
    for y in 0..28 {
        let mut x = 0;
        while x < 28 {
            if image[y * 28 + x] < 128 {
                x += 1;
                continue;
            }
            let start = x;
            while x < 28 && image[y * 28 + x] >= 128 {
                x += 1;
            }
            let cy = y as f64 * 10.0 + 5.0;
            strokes.push(vec![
                (start as f64 * 10.0 + 5.0, cy),
                (x as f64 * 10.0 - 5.0, cy),
            ]);
        }
    }
    strokes
}

/// `image` turned by `degrees` about its centre (nearest pixel): a handwriting of its own.
fn rotate(image: &[u8; 784], degrees: f64) -> [u8; 784] {
    let (s, c) = degrees.to_radians().sin_cos();
    let mut out = [0u8; 784];
    for y in 0..28 {
        for x in 0..28 {
            let (dx, dy) = (x as f64 - 13.5, y as f64 - 13.5);
            let (sx, sy) = (c * dx + s * dy + 13.5, -s * dx + c * dy + 13.5);
            let (sx, sy) = (sx.round() as i64, sy.round() as i64);
            if (0..28).contains(&sx) && (0..28).contains(&sy) {
                out[y * 28 + x] = image[sy as usize * 28 + sx as usize];
            }
        }
    }
    out
}

/// The page's answer for the drawing on its canvas, with the canvas itself.
struct Answer {
    gray: Vec<u8>,
    status: i64,
    picture: Vec<u8>,
    logits: Vec<f32>,
    probs: Vec<f32>,
    text: String,
}

impl std::fmt::Debug for Answer {
    // Without the canvas and the picture: 79,184 numbers would bury the message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("logits", &self.logits)
            .field("probs", &self.probs)
            .field("text", &self.text)
            .finish()
    }
}

fn numbers<T>(v: &Value, f: impl Fn(f64) -> T) -> Vec<T> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| f(x.as_f64().expect("a number")))
        .collect()
}

fn answer(page: &Page) -> Answer {
    let v = page.eval("({g: digits.gray(), l: digits.last})").unwrap();
    let last = &v["l"];
    Answer {
        gray: numbers(&v["g"], |x| x as u8),
        status: last["status"].as_i64().unwrap(),
        picture: numbers(&last["picture"], |x| x as u8),
        // JavaScript numbers read from a Float32Array: exact f32 values.
        logits: numbers(&last["logits"], |x| x as f32),
        probs: numbers(&last["probs"], |x| x as f32),
        text: last["text"].as_str().unwrap_or_default().to_string(),
    }
}

/// What the host makes of the same canvas, with the core directly: preprocessing, the
/// model's logits, softmax, and the verdict without a detector (as the page has none).
fn host_answer(model: &dyn digits_core::Classifier<784, 10>, gray: &[u8]) -> Answer {
    let mut a = Answer {
        gray: gray.to_vec(),
        status: 0,
        picture: vec![0; 784],
        logits: vec![0.0; 10],
        probs: vec![0.0; 10],
        text: String::new(),
    };
    match prepare(Gray::new(SIDE, SIDE, gray).unwrap()).unwrap() {
        Prepared::Picture(p) => {
            let logits = model.classify(&p);
            let mut probs = [0.0f32; 10];
            softmax(&logits, &mut probs);
            a.picture = p.to_vec();
            a.logits = logits.to_vec();
            a.probs = probs.to_vec();
            if let Verdict::NotADigit(r) = Verdict::judge(&p, &probs, &Limits::MNIST) {
                a.status = 1;
                a.text = r.to_string();
            }
        }
        Prepared::Nothing(Reason::Noise) => (a.status, a.text) = (3, Reason::Noise.to_string()),
        Prepared::Nothing(r) => (a.status, a.text) = (2, r.to_string()),
    }
    a
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Fails unless the page and the host agree on everything, to the bit.
fn assert_same(page: &Answer, host: &Answer, what: &str) {
    assert_eq!(page.status, host.status, "{what}: status ({})", page.text);
    assert_eq!(page.picture, host.picture, "{what}: the 28x28 picture");
    assert_eq!(bits(&page.logits), bits(&host.logits), "{what}: logits");
    assert_eq!(
        bits(&page.probs),
        bits(&host.probs),
        "{what}: probabilities"
    );
    assert_eq!(page.text, host.text, "{what}: verdict text");
}

fn text_of(page: &Page, id: &str) -> String {
    page.eval(&format!("document.getElementById('{id}').textContent"))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn click(page: &Page, id: &str) {
    page.eval(&format!("document.getElementById('{id}').click()"))
        .unwrap();
}

fn draw_digit(page: &Page, pad: &Pad, image: &[u8; 784]) -> Answer {
    click(page, "clear");
    pad.draw(page, &scanlines(image));
    answer(page)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn save_gray(path: &Path, gray: &[u8]) {
    image::GrayImage::from_raw(SIDE as u32, SIDE as u32, gray.to_vec())
        .unwrap()
        .save(path)
        .unwrap();
}

#[test]
fn drawn_digits_get_the_hosts_answer_to_the_bit() {
    let Some(browser) = browser("the page in Chromium") else {
        return;
    };
    let digits_50 = testkit::test_digits(50);
    for (name, n) in [
        ("mnist-int8.digits", 50),
        ("compact.digits", 12),
        ("mnist.digits", 12),
    ] {
        let server = WebServer::start(Some(&model(name)));
        let page = open(&browser, &server);
        let pad = Pad::of(&page);
        let host = host::model_io::load_weights(&model(name)).unwrap();
        let mut right = 0;
        let mut drawn = Vec::new();
        for (i, (image, &label)) in digits_50
            .images
            .iter()
            .zip(&digits_50.labels)
            .enumerate()
            .take(n)
        {
            let seen = draw_digit(&page, &pad, image);
            let expected = host_answer(host.weights.classifier(), &seen.gray);
            assert_same(&seen, &expected, &format!("{name}, test digit {i}"));
            right += usize::from(
                seen.status == 0 && digits_core::softmax::argmax(&seen.probs) == label as usize,
            );
            drawn.push(seen);
        }
        let timings = numbers(&page.eval("digits.timings").unwrap(), |x| x);
        let wasm = numbers(&page.eval("digits.wasm").unwrap(), |x| x);
        println!(
            "{name}: {n} digits drawn, all bit-identical to the host; {right} answered right; \
             per update over {} updates, median {:.2} ms in all (canvas read, preprocessing, \
             inference, verdict), {:.2} ms of it in the module",
            timings.len(),
            median(timings.clone()),
            median(wasm)
        );
        assert!(page.errors().unwrap().is_empty(), "{:?}", page.errors());
        if name == "mnist-int8.digits" {
            page.screenshot(shots().join("page.png")).unwrap();
            check_against_predict(&drawn[..5], &model(name));
            a_planted_fault_is_caught(&drawn[0], &host.weights);
        }
    }
}

/// The comparison is not blind: the host's answer from a model with one output bias off by one
/// unit of its accumulator (the smallest change an int8 model can have) fails it.
fn a_planted_fault_is_caught(seen: &Answer, weights: &host::model_io::Weights) {
    let host::model_io::Weights::Int8(model) = weights else {
        panic!("the int8 model");
    };
    let mut faulty = model.clone();
    faulty.b2[digits_core::softmax::argmax(&seen.probs)] += 1;
    let wrong = host_answer(&*faulty, &seen.gray);
    let caught = std::panic::catch_unwind(|| assert_same(seen, &wrong, "planted fault")).is_err();
    assert!(caught, "a one-unit change of a bias went unnoticed");
}

/// `digits predict` on the canvases saved as pictures: the same 28x28 and probabilities.
fn check_against_predict(drawn: &[Answer], model: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..drawn.len())
        .map(|i| {
            let p = dir.path().join(format!("canvas{i}.png"));
            save_gray(&p, &drawn[i].gray);
            p
        })
        .collect();
    let show = dir.path().join("show");
    let out = run_ok(
        digits()
            .args(["predict", "--json", "--model"])
            .arg(model)
            .arg("--show")
            .arg(&show)
            .args(&files),
    );
    let answers: Value = serde_json::from_str(&out).unwrap();
    for (i, (seen, a)) in drawn.iter().zip(answers.as_array().unwrap()).enumerate() {
        let probs = numbers(&a["probabilities"], |x| x as f32);
        assert_eq!(
            bits(&probs),
            bits(&seen.probs),
            "canvas {i}: predict's probabilities"
        );
        let shown = image::open(show.join(format!("canvas{i}.28x28.png")))
            .unwrap()
            .into_luma8();
        assert_eq!(
            shown.as_raw(),
            &seen.picture,
            "canvas {i}: predict's 28x28 picture"
        );
    }
}

/// The person's samples: `per_digit` test digits of each label, turned by 40 degrees (a
/// handwriting the model reads badly).
fn handwriting(per_digit: usize, skip: usize) -> Vec<([u8; 784], u8)> {
    let all = testkit::test_digits(300);
    let mut out = Vec::new();
    for d in 0..10u8 {
        let of_d = all.images.iter().zip(&all.labels).filter(|(_, l)| **l == d);
        for (image, _) in of_d.skip(skip).take(per_digit) {
            out.push((rotate(image, 40.0), d));
        }
    }
    out
}

fn teach(page: &Page, method: u32) -> Value {
    page.eval(&format!(
        "document.getElementById('method').value='{method}'"
    ))
    .unwrap();
    click(page, "teach");
    page.wait_for("digits.teach", Duration::from_secs(30))
        .unwrap()
}

fn download(page: &Page, dir: &Path) -> Vec<u8> {
    click(page, "download");
    let d = page.wait_download(Duration::from_secs(30)).unwrap();
    assert_eq!(d.suggested_name, "digits-tuned.digits");
    let bytes = std::fs::read(&d.path).unwrap();
    std::fs::write(dir.join(format!("tuned-{}.digits", bytes.len())), &bytes).unwrap();
    bytes
}

#[test]
fn teaching_learns_the_handwriting_and_the_download_is_the_hosts_model() {
    let Some(browser) = browser("the page's teach flow in Chromium") else {
        return;
    };
    let name = "mnist-int8.digits";
    let server = WebServer::start(Some(&model(name)));
    let page = open(&browser, &server);
    let dir = tempfile::tempdir().unwrap();
    page.set_download_dir(dir.path()).unwrap();
    let pad = Pad::of(&page);
    let samples = handwriting(3, 0);
    let mut canvases = Vec::new();
    for (image, label) in &samples {
        let seen = draw_digit(&page, &pad, image);
        click(&page, &format!("label-{label}"));
        canvases.push((seen.gray, *label));
    }
    assert_eq!(page.eval("digits.teach").unwrap(), Value::Null);
    page.screenshot(shots().join("page-samples.png")).unwrap();

    // The same drawings and labels on the host, through the page's own code run natively.
    let model_bytes = std::fs::read(model(name)).unwrap();
    let replay = |method: Gradient| {
        let mut p = digits_web::page::Page::new();
        p.model_buffer(model_bytes.len())
            .unwrap()
            .copy_from_slice(&model_bytes);
        p.load_model().unwrap();
        for (gray, label) in &canvases {
            p.canvas(SIDE, SIDE).unwrap().copy_from_slice(gray);
            p.classify(SIDE, SIDE);
            p.teach_add(u32::from(*label)).unwrap();
        }
        let summary = p.teach(method).unwrap();
        (summary, p.tuned_file().unwrap().to_vec())
    };
    for (method, label) in [(0, Gradient::Backprop), (1, Gradient::Numeric)] {
        let taught = teach(&page, method);
        let (before, after) = (
            taught["before"].as_f64().unwrap(),
            taught["after"].as_f64().unwrap(),
        );
        println!(
            "{label:?}: accuracy on the {} samples {:.1}% -> {:.1}% in {:.1} ms (in the page)",
            taught["n"],
            100.0 * before,
            100.0 * after,
            taught["ms"].as_f64().unwrap()
        );
        assert!(after > before, "{taught}");
        let file = download(&page, dir.path());
        let (summary, host_file) = replay(label);
        assert_eq!(
            file, host_file,
            "{label:?}: the downloaded model is the host's, byte for byte"
        );
        // Not blind: the other method's model is another file.
        let other = if method == 0 {
            Gradient::Numeric
        } else {
            Gradient::Backprop
        };
        assert_ne!(file, replay(other).1, "{label:?}: the other method's model");
        assert_eq!(
            (summary.before.correct as f64 / 30.0) as f32,
            before as f32,
            "{label:?}: before"
        );

        // The file is a model like any other: `digits eval` reads it, and gives the page's
        // logits for a new drawing.
        let path = dir.path().join("taught.digits");
        std::fs::write(&path, &file).unwrap();
        let eval = run_ok(
            digits()
                .args(["eval", "--data"])
                .arg(slice())
                .arg("--model")
                .arg(&path),
        );
        println!(
            "{label:?}: digits eval on the slice: {}",
            eval.lines().find(|l| l.contains("ccuracy")).unwrap_or("")
        );
        let (new, _) = handwriting(1, 5)[7];
        let seen = draw_digit(&page, &pad, &new);
        let loaded = host::model_io::load_weights(&path).unwrap();
        assert_same(
            &seen,
            &host_answer(loaded.weights.classifier(), &seen.gray),
            "a drawing after teaching",
        );
    }
    page.screenshot(shots().join("page-taught.png")).unwrap();

    // Reset: the loaded model answers again.
    click(&page, "reset");
    let seen = answer(&page);
    let original = host::model_io::load_weights(&model(name)).unwrap();
    assert_same(
        &seen,
        &host_answer(original.weights.classifier(), &seen.gray),
        "after reset",
    );
    assert!(page.errors().unwrap().is_empty(), "{:?}", page.errors());
}

#[test]
fn bad_input_gets_a_clear_message() {
    let Some(browser) = browser("the page's refusals in Chromium") else {
        return;
    };
    let server = WebServer::start(None);
    let page = open(&browser, &server);
    let pad = Pad::of(&page);

    // Nothing drawn.
    click(&page, "clear");
    assert_eq!(answer(&page).status, 2);
    assert_eq!(text_of(&page, "verdict"), "Draw a digit");
    click(&page, "label-3");
    assert!(
        text_of(&page, "teach-result").contains("draw a digit first"),
        "{}",
        text_of(&page, "teach-result")
    );
    let taught = teach(&page, 0);
    assert!(
        taught["text"].as_str().unwrap().contains("no samples"),
        "{taught}"
    );

    // A scribble: zigzags filling the middle of the canvas.
    let zigzag: Vec<(f64, f64)> = (0..=16)
        .map(|i| {
            (
                if i % 2 == 0 { 50.0 } else { 230.0 },
                50.0 + i as f64 * 11.0,
            )
        })
        .collect();
    pad.draw(&page, &[zigzag]);
    let seen = answer(&page);
    let host = host::model_io::load_weights(&model("mnist-int8.digits")).unwrap();
    assert_same(
        &seen,
        &host_answer(host.weights.classifier(), &seen.gray),
        "a scribble",
    );
    assert_eq!(seen.status, 1, "{seen:?}");
    assert!(
        text_of(&page, "verdict").starts_with("not a digit: "),
        "{}",
        text_of(&page, "verdict")
    );
    page.screenshot(shots().join("page-scribble.png")).unwrap();

    // A compact model answers but cannot be taught; the page says so.
    let compact = WebServer::start(Some(&model("compact.digits")));
    let page = open(&browser, &compact);
    let pad = Pad::of(&page);
    let digit = testkit::test_digits(1);
    draw_digit(&page, &pad, &digit.images[0]);
    click(&page, &format!("label-{}", digit.labels[0]));
    let taught = teach(&page, 0);
    assert!(
        taught["text"]
            .as_str()
            .unwrap()
            .contains("cannot be taught"),
        "{taught}"
    );
    assert!(
        text_of(&page, "teach-result").contains("cannot be taught"),
        "{}",
        text_of(&page, "teach-result")
    );

    // On a phone: drawn with a finger.
    let page = browser.new_page("about:blank").unwrap();
    page.emulate_phone().unwrap();
    page.goto(&server.url()).unwrap();
    page.eval("digits.ready").unwrap();
    let pad = Pad::of(&page);
    for s in scanlines(&digit.images[0]) {
        let points: Vec<(f64, f64)> = s
            .iter()
            .map(|&(x, y)| (pad.left + x * pad.scale, pad.top + y * pad.scale))
            .collect();
        page.touch_stroke(&points).unwrap();
    }
    let seen = answer(&page);
    assert_same(
        &seen,
        &host_answer(host.weights.classifier(), &seen.gray),
        "drawn by touch",
    );
    page.screenshot(shots().join("page-phone.png")).unwrap();
}
