//! `digits device`: the firmware in QEMU, driven from the host over its UART.
//!
//! Each command starts its own QEMU (the `serve` firmware, UART0 on a local socket) and stops
//! it when done, or talks to one that `digits device run` keeps running (`--connect`).
//! `device eval` classifies the whole test set through the bulk path (the `eval` firmware,
//! images loaded into the PSRAM by QEMU) unless `--uart` asks for the protocol, which moves
//! about 20 KiB/s under QEMU: some 50 ms per image.

pub mod finetune;
pub mod tuner;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use digits_core::protocol::DeviceInfo;
use digits_core::softmax::{argmax, softmax};
use firmware::eval::{END_MARK, FLAG_LABELS, FLAG_LOGITS, Header, IMAGE_LEN};
use firmware::model::{int8_digest, params_digest};
use firmware::qemu::{self, Link, LogLine, Qemu, Serial};
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::{self, Dataset, DatasetKind};
use crate::evaluate::predict::top3;
use crate::evaluate::preprocess;
use crate::model_io::{self, Weights};

/// Options of `digits device`.
#[derive(Args)]
pub struct DeviceArgs {
    #[command(subcommand)]
    command: DeviceCommand,
    /// Directory with the firmware binaries `serve` and `eval`.
    #[arg(long, value_name = "DIR", global = true)]
    firmware: Option<PathBuf>,
    /// Talk to a device that `digits device run` keeps running at ADDR instead of starting one.
    #[arg(long, value_name = "ADDR", global = true)]
    connect: Option<SocketAddr>,
    /// Show the device's INFO and DEBUG log lines too, not only warnings and errors.
    #[arg(long, short, global = true)]
    verbose: bool,
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Start the device and keep it running, its UART listening at --listen, its log printed,
    /// until Ctrl-C.
    Run {
        /// Where the device's UART listens for `digits device ... --connect ADDR`.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7878")]
        listen: SocketAddr,
    },
    /// Print what the device reports about itself: firmware, model, memory, counters.
    Info,
    /// Recognize pictures of digits on the device (preprocessed on the host like `digits
    /// predict`).
    Predict {
        /// Pictures of one digit each (PNG or JPEG).
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<PathBuf>,
    },
    /// Classify test images on the device; print its accuracy and its agreement with the host.
    Eval(EvalArgs),
    /// Teach the device a new writer (`digits data shift`): fine-tune its output layer on a
    /// few labeled samples; print accuracy before and after, on the shifted and the original
    /// test sets, checking every step against the host.
    Finetune(crate::device::finetune::FinetuneArgs),
}

#[derive(Args)]
struct EvalArgs {
    /// Only the first N test images.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Send the images one by one over the UART with the protocol (about 50 ms each) instead
    /// of loading them all into the device's memory at start.
    #[arg(long)]
    uart: bool,
    #[command(flatten)]
    host: HostSide,
}

/// What the host compares a device run with: the model the firmware was built from and MNIST.
#[derive(Args)]
pub struct HostSide {
    /// The model file the firmware was built from, for the host's side of the comparison.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "firmware/models/mnist.digits"
    )]
    pub model: PathBuf,
    /// Directory with the MNIST IDX files; else $MNIST_DIR, else data/mnist/.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Runs `digits device`.
pub fn run(args: DeviceArgs) -> Result<()> {
    let firmware = Firmware::new(args.firmware.as_deref());
    let logs = LogPrinter {
        verbose: args.verbose,
    };
    match args.command {
        DeviceCommand::Run { listen } => run_device(&firmware, listen),
        DeviceCommand::Info => {
            let mut session = Session::open(&firmware, args.connect, logs)?;
            let info = session.link.info()?;
            print_info(&info);
            let stats = session.link.stats()?;
            println!(
                "counters      {} requests, {} images classified, {} damaged frames, {} unknown requests",
                stats.requests, stats.classified, stats.bad_frames, stats.unknown_requests
            );
            session.close()
        }
        DeviceCommand::Predict { images } => predict(&firmware, args.connect, logs, &images),
        DeviceCommand::Finetune(finetune) => {
            if args.connect.is_some() {
                bail!(
                    "device finetune starts its own device, with the evaluation images in its \
                     memory: drop --connect"
                );
            }
            crate::device::finetune::run(&firmware, logs, &finetune)
        }
        DeviceCommand::Eval(eval) => {
            if eval.uart {
                eval_uart(&firmware, args.connect, logs, &eval)
            } else {
                if args.connect.is_some() {
                    bail!(
                        "--connect talks to a running `serve` device; the bulk path starts its \
                         own `eval` firmware: add --uart to evaluate over the connection"
                    );
                }
                eval_bulk(&firmware, logs, &eval)
            }
        }
    }
}

/// Where the firmware binaries are.
pub struct Firmware {
    dir: PathBuf,
}

impl Firmware {
    fn new(dir: Option<&Path>) -> Self {
        let dir = dir.map(Path::to_owned).unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
            Path::new(&target).join(qemu::TARGET).join("release")
        });
        Self { dir }
    }

    pub(crate) fn elf(&self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if !path.is_file() {
            bail!(
                "no firmware binary {}: build the firmware with `cargo build -p firmware \
                 --release --target {}`, or name its directory with --firmware DIR",
                path.display(),
                qemu::TARGET
            );
        }
        Ok(path)
    }
}

/// Prints the device's log lines: warnings and errors always, the rest with `--verbose`.
#[derive(Clone, Copy)]
pub struct LogPrinter {
    verbose: bool,
}

impl LogPrinter {
    pub(crate) fn sink(self) -> impl FnMut(LogLine) + Send + 'static {
        move |line: LogLine| {
            if self.verbose || matches!(line.level, Some("WARN" | "ERROR")) {
                eprintln!("device: {line}");
            }
        }
    }
}

pub fn need_qemu() -> Result<()> {
    if !qemu::qemu_available() {
        return Err(qemu::Error::NoQemu.into());
    }
    Ok(())
}

/// A link to a device, and the QEMU behind it if we started one.
struct Session {
    qemu: Option<Qemu>,
    link: Link,
}

impl Session {
    fn open(firmware: &Firmware, connect: Option<SocketAddr>, logs: LogPrinter) -> Result<Self> {
        let (qemu, mut link) = match connect {
            Some(addr) => {
                let link = Link::connect(addr).with_context(|| {
                    format!("cannot reach a device at {addr}: is `digits device run` running?")
                })?;
                (None, link)
            }
            None => {
                need_qemu()?;
                let (qemu, link) =
                    Qemu::start_with_link(&firmware.elf("serve")?, &[], logs.sink())?;
                (Some(qemu), link)
            }
        };
        link.ping(0x5EED)
            .context("the device does not answer a ping")?;
        Ok(Self { qemu, link })
    }

    fn close(self) -> Result<()> {
        if let Some(qemu) = self.qemu {
            qemu.stop()?;
        }
        Ok(())
    }
}

fn run_device(firmware: &Firmware, listen: SocketAddr) -> Result<()> {
    need_qemu()?;
    let elf = firmware.elf("serve")?;
    let mut qemu = Qemu::start(
        &elf,
        &Serial::Listen(listen),
        &[],
        LogPrinter { verbose: true }.sink(),
    )?;
    eprintln!(
        "device: {} in QEMU, UART0 at {listen}; try `digits device info --connect {listen}`; \
         Ctrl-C stops it",
        elf.display()
    );
    // Runs until QEMU ends (Ctrl-C reaches it too).
    let code = qemu.wait(Duration::MAX)?;
    match code {
        Some(0) => Ok(()),
        Some(code) => bail!(
            "the device stopped with status {code}: {}",
            qemu.stderr_text()
        ),
        None => Ok(()),
    }
}

fn print_info(info: &DeviceInfo<'_>) {
    let m = &info.model;
    let a = m.architecture;
    println!(
        "firmware      {} (protocol {}) on {}",
        info.firmware, info.protocol, info.board
    );
    let accuracy = m
        .test_accuracy
        .map_or("not recorded".to_owned(), |a| format!("{:.2}%", 100.0 * a));
    println!(
        "model         {}-{}-{} {:?}, trained on {}, test accuracy {accuracy}, parameters \
         digest {:016x}",
        a.input, a.hidden, a.output, m.precision, m.dataset, m.params_fnv64
    );
    println!(
        "flash         {} B (.text + .rodata + .data)",
        info.flash_bytes
    );
    println!("static RAM    {} B (.data + .bss)", info.static_ram_bytes);
    println!(
        "stack         {} B peak of {} B",
        info.stack_peak_bytes, info.stack_bytes
    );
}

fn predict(
    firmware: &Firmware,
    connect: Option<SocketAddr>,
    logs: LogPrinter,
    images: &[PathBuf],
) -> Result<()> {
    let mut session = Session::open(firmware, connect, logs)?;
    let mut failed = 0;
    for path in images {
        let pixels = preprocess::load_gray(path)
            .map_err(anyhow::Error::from)
            .and_then(|gray| Ok(preprocess::to_mnist(&gray)?));
        let pixels = match pixels.with_context(|| path.display().to_string()) {
            Ok(pixels) => pixels,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed += 1;
                continue;
            }
        };
        let c = session.link.classify(&pixels)?;
        let mut p = [0.0f32; 10];
        softmax(&c.logits, &mut p);
        let t = top3(&p);
        println!(
            "{}: {}  (on the device; top-3: {} {:.1}%, {} {:.1}%, {} {:.1}%)",
            path.display(),
            c.digit,
            t[0].digit,
            100.0 * t[0].probability,
            t[1].digit,
            100.0 * t[1].probability,
            t[2].digit,
            100.0 * t[2].probability
        );
    }
    session.close()?;
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be recognized",
            images.len()
        );
    }
    Ok(())
}

/// The test images, the host's model and its logits for them.
struct Reference {
    images: Vec<[u8; IMAGE_LEN]>,
    labels: Vec<u8>,
    weights: Weights,
}

impl Reference {
    fn load(args: &EvalArgs) -> Result<Self> {
        let dir = data::resolve_dir(args.host.data.as_deref(), DatasetKind::Mnist);
        let dataset = Dataset::load(&dir.path, DatasetKind::Mnist)?;
        let n = args
            .limit
            .unwrap_or(dataset.test.labels.len())
            .min(dataset.test.labels.len());
        if n == 0 {
            bail!("--limit must be at least 1");
        }
        let weights = model_io::load_weights(&args.host.model)
            .context("name the model file the firmware was built from with --model FILE")?
            .weights;
        Ok(Self {
            images: dataset.test.images[..n].to_vec(),
            labels: dataset.test.labels[..n].to_vec(),
            weights,
        })
    }

    fn check_model(&self, device_digest: u64, args: &EvalArgs) -> Result<()> {
        let host = match &self.weights {
            Weights::F32(m) => params_digest(m),
            Weights::Int8(q) => int8_digest(q),
        };
        if host != device_digest {
            bail!(
                "the device runs another model (parameters digest {device_digest:016x}) than \
                 {} ({host:016x}): pass the model file the firmware was built from with --model",
                args.host.model.display()
            );
        }
        Ok(())
    }

    fn host_logits(&self, i: usize) -> [f32; 10] {
        self.weights.classifier().classify(&self.images[i])
    }

    /// The bulk-path firmware for this precision.
    fn eval_elf(&self) -> &'static str {
        match self.weights {
            Weights::F32(_) => "eval",
            Weights::Int8(_) => "eval-int8",
        }
    }
}

/// Agreement between the device and the host, image by image.
#[derive(Default)]
struct Tally {
    images: usize,
    correct: usize,
    same_digit: usize,
    same_bits: usize,
    first_difference: Option<usize>,
}

impl Tally {
    fn add(&mut self, i: usize, device: &[f32; 10], host: &[f32; 10], label: u8) {
        let digit = argmax(device);
        self.images += 1;
        self.correct += (digit == label as usize) as usize;
        self.same_digit += (digit == argmax(host)) as usize;
        let same = device.map(f32::to_bits) == host.map(f32::to_bits);
        self.same_bits += same as usize;
        if !same && self.first_difference.is_none() {
            self.first_difference = Some(i);
        }
    }

    fn report(&self, how: &str) -> Result<()> {
        let n = self.images;
        println!(
            "device accuracy   {:.2}% ({} of {n} test images, {how})",
            100.0 * self.correct as f64 / n as f64,
            self.correct
        );
        println!(
            "agreement         {} of {n} predictions as on the host, {} of {n} with bit-identical logits",
            self.same_digit, self.same_bits
        );
        if let Some(i) = self.first_difference {
            bail!("the device's logits differ from the host's (first at test image {i})");
        }
        Ok(())
    }
}

fn eval_uart(
    firmware: &Firmware,
    connect: Option<SocketAddr>,
    logs: LogPrinter,
    args: &EvalArgs,
) -> Result<()> {
    let reference = Reference::load(args)?;
    let mut session = Session::open(firmware, connect, logs)?;
    let digest = session.link.info()?.model.params_fnv64;
    reference.check_model(digest, args)?;
    let n = reference.images.len();
    let bar = ProgressBar::new(n as u64);
    bar.set_style(
        ProgressStyle::with_template("device eval [{bar:30}] {pos}/{len}  {per_sec}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let mut tally = Tally::default();
    for i in 0..n {
        let c = session
            .link
            .classify(&reference.images[i])
            .with_context(|| format!("test image {i}"))?;
        tally.add(i, &c.logits, &reference.host_logits(i), reference.labels[i]);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    session.close()?;
    tally.report(&format!(
        "over the UART in {seconds:.1} s, {:.1} ms per image",
        1e3 * seconds / n as f64
    ))
}

fn eval_bulk(firmware: &Firmware, logs: LogPrinter, args: &EvalArgs) -> Result<()> {
    need_qemu()?;
    let reference = Reference::load(args)?;
    let elf = firmware.elf(reference.eval_elf())?;
    let n = reference.images.len();
    let header = Header {
        count: n as u32,
        flags: FLAG_LABELS | FLAG_LOGITS,
    };
    let mut blob = header.to_bytes().to_vec();
    blob.extend(reference.images.as_flattened());
    blob.extend(&reference.labels);
    blob.extend(END_MARK);
    let (_file, loader) = blob_in_psram("digits-eval-", &blob)?;

    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let mut show = logs.sink();
    let start = Instant::now();
    let mut qemu = Qemu::start(
        &elf,
        &Serial::None,
        &["-icount", "shift=0", "-device", &loader],
        move |line: LogLine| match line.level {
            None => sink.lock().expect("lines").push(line.text),
            Some(_) => show(line),
        },
    )?;
    let code = qemu.wait(Duration::from_secs(600))?;
    let seconds = start.elapsed().as_secs_f64();
    if code != Some(0) {
        bail!(
            "the eval firmware failed (status {code:?}); its errors are above. {}",
            qemu.stderr_text()
        );
    }
    let lines = lines.lock().expect("lines");

    let mut tally = Tally::default();
    let mut digest = None;
    let mut instructions = None;
    let mut stack = None;
    for line in lines.iter() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        match words.next() {
            Some("model") => digest = words.last().map(str::to_owned),
            Some("logits") => {
                let i: usize = words.next().context("logits line")?.parse()?;
                let mut z = [0.0f32; 10];
                for v in &mut z {
                    let bits = words.next().context("logits line too short")?;
                    *v = f32::from_bits(u32::from_str_radix(bits, 16)?);
                }
                tally.add(i, &z, &reference.host_logits(i), reference.labels[i]);
            }
            Some("instructions_per_inference") => instructions = words.next().map(str::to_owned),
            Some("stack_peak_bytes") => stack = words.next().map(str::to_owned),
            _ => {}
        }
    }
    let digest = digest.context("the device did not report its model")?;
    reference.check_model(u64::from_str_radix(&digest, 16)?, args)?;
    if tally.images != n {
        bail!("the device reported {} of {n} images", tally.images);
    }
    tally.report(&format!(
        "loaded into the device's PSRAM, {seconds:.1} s in QEMU"
    ))?;
    if let Some(instructions) = instructions {
        println!(
            "instructions      {instructions} per inference (qemu -icount, normalize + logits)"
        );
    }
    if let Some(stack) = stack {
        println!("stack peak        {stack} B");
    }
    Ok(())
}

/// Writes `blob` to a temporary file (named `prefix`...) and returns it, to keep while QEMU
/// runs, with QEMU's argument that loads it into the device's PSRAM.
pub fn blob_in_psram(prefix: &str, blob: &[u8]) -> Result<(tempfile::NamedTempFile, String)> {
    let file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".blob")
        .tempfile()?;
    std::fs::write(file.path(), blob)?;
    let loader = firmware::qemu::blob_loader(file.path());
    Ok((file, loader))
}
