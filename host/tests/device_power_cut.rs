//! Power cuts during updates, end to end: `serve` runs in QEMU while a push or a rollback goes
//! on over its UART; at random moments the machine is stopped and its flash saved (QMP's
//! `stop`, `memsave`, `cont`), as a power cut would leave it. Each saved flash then boots in a
//! new QEMU, which must serve the model from before the update or the one it brought, with the
//! host's bits: never none, never another. The simulated flash of `core/tests/update_powercut.rs`
//! cuts at every single write; this checks the firmware, its flash and its boot as they are.

mod common;

use common::{have_qemu, workspace};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use digits_core::Rng;
use digits_core::update::image::slot_image;
use digits_core::update::layout::{AREA_LEN, FIRMWARE_FLASH, SLOTS};
use host::device::link::Link;
use host::device::model::DeviceModel;
use host::device::qemu::{Board, Qemu};
use host::device::qmp::Qmp;

/// The flash a power cut leaves: the firmware's and the slot area.
const FLASH: u64 = (FIRMWARE_FLASH + AREA_LEN) as u64;

/// A model the device may run, as the host computes it.
struct Known {
    name: &'static str,
    file: Vec<u8>,
    model: DeviceModel,
}

impl Known {
    fn shipped(name: &'static str) -> Known {
        let path = workspace().join("firmware/models").join(name);
        Known {
            name,
            file: std::fs::read(&path).unwrap(),
            model: DeviceModel::load(Some(&path)).unwrap(),
        }
    }
}

/// The shipped models, at [`F32`], [`INT8`] and [`COMPACT`].
fn shipped_models() -> [Known; 3] {
    [
        Known::shipped("mnist.digits"),
        Known::shipped("mnist-int8.digits"),
        Known::shipped("compact.digits"),
    ]
}
const F32: usize = 0;
const INT8: usize = 1;
const COMPACT: usize = 2;

/// A saved flash, and the models it may boot: the one before the update and the one after.
struct Cut {
    when: &'static str,
    memory: PathBuf,
    allowed: [usize; 2],
}

/// Which of `known` the device booted from `memory` serves, after checking that its logits for
/// a few test digits are the host's, bit for bit; an error says what it served instead.
fn judge(elf: &Path, memory: &Path, known: &[Known], allowed: [usize; 2]) -> Result<usize, String> {
    let (qemu, mut link) = Qemu::boot_memory_with_link_on(Board::Mps2An386, elf, memory, |_| {})
        .map_err(|e| format!("no QEMU: {e}"))?;
    let verdict = (|| {
        link.wait_ready(Link::STARTUP)
            .map_err(|e| format!("it did not boot: {e}"))?;
        let info = link.info().map_err(|e| format!("no info: {e}"))?;
        let Some(running) = info.model else {
            return Err("it runs no model".to_owned());
        };
        let which = allowed
            .into_iter()
            .find(|&k| known[k].model.digest == running.params_fnv64)
            .ok_or_else(|| {
                let name = known
                    .iter()
                    .find(|k| k.model.digest == running.params_fnv64)
                    .map_or("an unknown model", |k| k.name);
                format!(
                    "it runs {name} ({:016x}), neither {} nor {}",
                    running.params_fnv64, known[allowed[0]].name, known[allowed[1]].name
                )
            })?;
        let digits = testkit::test_digits(3);
        for digit in &digits.images {
            let device = link
                .classify(digit)
                .map_err(|e| format!("no classification: {e}"))?;
            let host = known[which].model.weights.classifier().classify(digit);
            if device.logits.map(f32::to_bits) != host.map(f32::to_bits) {
                return Err(format!(
                    "{} answers {:?}, the host {host:?}",
                    known[which].name, device.logits
                ));
            }
        }
        Ok(which)
    })();
    qemu.stop().ok();
    verdict
}

/// Saves the flash of the stopped machine, then lets it go on.
fn cut(qmp: &mut Qmp, dir: &Path, n: usize) -> PathBuf {
    let memory = dir.join(format!("cut-{n:03}.bin"));
    qmp.stop().unwrap();
    qmp.memsave(0, FLASH, &memory).unwrap();
    qmp.cont().unwrap();
    memory
}

/// The power cuts of one running machine, saved in `dir`.
struct Cutter<'a> {
    qmp: &'a mut Qmp,
    dir: &'a Path,
    cuts: Vec<Cut>,
}

impl Cutter<'_> {
    /// Cuts the power now, when the device may boot `allowed`.
    fn cut(&mut self, when: &'static str, allowed: [usize; 2]) {
        let memory = cut(self.qmp, self.dir, self.cuts.len());
        self.cuts.push(Cut {
            when,
            memory,
            allowed,
        });
    }

    /// Runs `update` on another thread, cutting the power at random moments until it is done:
    /// waits of up to `2 * mean`, then up to `2 * mean / 10` once `near_end` is set (the
    /// commit, short and the moment that matters most).
    fn during<T: Send + 'static>(
        &mut self,
        when: &'static str,
        allowed: [usize; 2],
        mean: Duration,
        rng: &mut Rng,
        update: impl FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
    ) -> T {
        let near_end = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&near_end);
        let worker = thread::spawn(move || update(flag));
        while !worker.is_finished() {
            let scale = if near_end.load(Ordering::Relaxed) {
                0.2
            } else {
                2.0
            };
            thread::sleep(mean.mul_f64(scale * rng.uniform()));
            if worker.is_finished() {
                break;
            }
            self.cut(when, allowed);
        }
        worker.join().unwrap()
    }
}

#[test]
fn a_power_cut_at_random_moments_of_pushes_and_rollbacks_boots_the_old_or_the_new_model() {
    if !have_qemu("device_power_cut::random_moments") {
        return;
    }
    let elf = common::serve_elf();
    let known = shipped_models();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("random moments from seed {seed}");
    let mut rng = Rng::new(seed);

    let (qemu, mut qmp, pts) =
        Qemu::start_pty_on(Board::Mps2An386, &elf, &[], &[], |_| {}).unwrap();
    let mut link = Link::open_serial(&pts, 115_200).unwrap();
    link.wait_ready(Link::STARTUP).unwrap();
    link.hello().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cutter = Cutter {
        qmp: &mut qmp,
        dir: dir.path(),
        cuts: Vec::new(),
    };
    cutter.cut("as flashed, before any update", [F32, F32]);

    // Each update on a thread of its own, with the link; the link comes back when it is done.
    let push = |file: Vec<u8>| {
        move |near_end: Arc<AtomicBool>, mut link: Link| {
            let len = file.len() as u32;
            link.push(&file, |sent, _| {
                if sent >= len {
                    near_end.store(true, Ordering::Relaxed);
                }
            })
            .unwrap();
            link
        }
    };
    let started = Instant::now();
    let int8 = push(known[INT8].file.clone());
    let mut link = cutter.during(
        "during a push of the int8 model",
        [F32, INT8],
        Duration::from_millis(400),
        &mut rng,
        move |flag| int8(flag, link),
    );
    println!("int8 push: {:.1} s", started.elapsed().as_secs_f64());
    cutter.cut("after the int8 push", [INT8, INT8]);

    let link = cutter.during(
        "during a rollback",
        [INT8, F32],
        Duration::from_millis(5),
        &mut rng,
        move |flag| {
            flag.store(true, Ordering::Relaxed);
            link.rollback().unwrap();
            link
        },
    );
    cutter.cut("after the rollback", [F32, F32]);

    let compact = push(known[COMPACT].file.clone());
    let link = cutter.during(
        "during a push of the compact model",
        [F32, COMPACT],
        Duration::from_millis(40),
        &mut rng,
        move |flag| compact(flag, link),
    );
    drop(link);
    cutter.cut("after the compact push", [COMPACT, COMPACT]);
    let cuts = cutter.cuts;
    qmp.quit().ok();
    drop(qemu);

    // Every cut boots a model the host knows, with its bits.
    let judging = Instant::now();
    let mut tally: Vec<(&str, [usize; 3])> = Vec::new();
    for c in &cuts {
        let which = judge(&elf, &c.memory, &known, c.allowed)
            .unwrap_or_else(|e| panic!("a power cut {}: {e}", c.when));
        let row = match tally.iter_mut().position(|r| r.0 == c.when) {
            Some(k) => k,
            None => {
                tally.push((c.when, [0; 3]));
                tally.len() - 1
            }
        };
        tally[row].1[which] += 1;
        std::fs::remove_file(&c.memory).ok();
    }
    for (when, booted) in &tally {
        let n: usize = booted.iter().sum();
        let names: Vec<String> = booted
            .iter()
            .zip(&known)
            .filter(|(n, _)| **n > 0)
            .map(|(n, k)| format!("{n} {}", k.name))
            .collect();
        println!("{n:3} cuts {when}: booted {}", names.join(", "));
    }
    println!(
        "{} power cuts in all, each booted a valid model ({:.1} s per boot)",
        cuts.len(),
        judging.elapsed().as_secs_f64() / cuts.len() as f64
    );
    let during_pushes: usize = tally
        .iter()
        .filter(|r| r.0.starts_with("during a push"))
        .map(|r| r.1.iter().sum::<usize>())
        .sum();
    assert!(
        during_pushes >= 5,
        "only {during_pushes} cuts during the pushes"
    );
}

/// The judge fails on planted faults: a flash whose slot A holds a model the update never
/// brought, and one with no model at all.
#[test]
fn the_power_cut_judge_catches_planted_faults() {
    if !have_qemu("device_power_cut::planted_faults") {
        return;
    }
    let elf = common::serve_elf();
    let known = shipped_models();
    let dir = tempfile::tempdir().unwrap();
    let (qemu, mut qmp, pts) =
        Qemu::start_pty_on(Board::Mps2An386, &elf, &[], &[], |_| {}).unwrap();
    Link::open_serial(&pts, 115_200)
        .unwrap()
        .wait_ready(Link::STARTUP)
        .unwrap();
    let flashed = std::fs::read(cut(&mut qmp, dir.path(), 0)).unwrap();
    qmp.quit().ok();
    drop(qemu);

    let slot_a = FIRMWARE_FLASH as usize..(FIRMWARE_FLASH + SLOTS[0].end) as usize;
    let write = |name: &str, memory: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, memory).unwrap();
        path
    };
    // As flashed, the judge passes: the factory f32 model.
    let good = write("good.bin", &flashed);
    assert_eq!(judge(&elf, &good, &known, [F32, INT8]), Ok(F32));

    let mut other = flashed.clone();
    slot_image(&known[COMPACT].file, &mut other[slot_a.clone()], 960).unwrap();
    let other = write("other.bin", &other);
    let e = judge(&elf, &other, &known, [F32, INT8]).unwrap_err();
    println!("planted: another model: {e}");
    assert!(
        e.contains("it runs compact.digits") && e.contains("neither mnist.digits nor"),
        "{e}"
    );

    let mut blank = flashed;
    blank[slot_a].fill(0xFF);
    let blank = write("blank.bin", &blank);
    let e = judge(&elf, &blank, &known, [F32, INT8]).unwrap_err();
    println!("planted: no model: {e}");
    assert!(e.contains("it runs no model"), "{e}");
}
