//! Power cuts during updates, simulated: each update's writes are recorded, then the power is
//! cut before and after every single erase and program, and in the middle of each (a torn
//! write: half a sector erased, half the words programmed, one word with only some bits). At
//! every cut a boot must find a valid model, and it must be the old one until the update's last
//! write (the commit word, or the revoke word of a rollback) is whole, the new one after.

mod common;

use common::update::{PAGE_SLOTS, PAGES, factory_area, file_crc as crc, model};

use common::sim_flash::{Cut, Op, SimFlash, apply, ram};
use digits_core::MnistMlp;
use digits_core::model_file::{self, decode};
use digits_core::update::image::slot_image;
use digits_core::update::layout::{GEOMETRY, SLOTS};
use digits_core::update::{Geometry, Slots, State};
use std::ops::Range;

/// The shipped f32 model with one weight changed: another f32 model.
fn other_f32() -> Vec<u8> {
    let file = model("mnist.digits");
    let decoded = decode(&file).unwrap();
    let mut m: Box<MnistMlp> = bytemuck::zeroed_box();
    decoded.load_into(&mut m).unwrap();
    m.output.b[3] += 0.25;
    let mut buf = vec![0u8; file.len() + 64];
    let n = model_file::encode(&*m, &decoded.metadata, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// What one update did to the flash.
struct Recorded {
    start: Vec<u8>,
    log: Vec<Op>,
    end: Vec<u8>,
}

fn record(
    start: Vec<u8>,
    geometry: Geometry,
    ranges: [Range<u32>; 2],
    update: impl FnOnce(&mut Slots<SimFlash>),
) -> Recorded {
    let mut slots = Slots::new(SimFlash::new(start.clone(), geometry), ranges);
    update(&mut slots);
    let flash = slots.into_flash();
    Recorded {
        start,
        log: flash.log,
        end: flash.bytes,
    }
}

fn push(slots: &mut Slots<SimFlash>, file: &[u8]) {
    slots.begin(file.len() as u32).unwrap();
    for (k, piece) in file.chunks(960).enumerate() {
        slots.chunk((k * 960) as u32, piece).unwrap();
    }
    slots.commit().unwrap();
}

/// The file CRC of the model a boot from `bytes` runs (every slot checked whole).
fn boot(bytes: &mut [u8], geometry: Geometry, ranges: [Range<u32>; 2]) -> Option<u32> {
    let slots = Slots::new(ram(bytes, geometry), ranges);
    slots.active().map(|a| a.header.file_crc)
}

#[derive(Default, Debug)]
struct Counts {
    writes: usize,
    erases: usize,
    cuts: usize,
    recoveries: usize,
}

/// Cuts the power at every point of `rec` and boots; see the module's documentation. Every
/// `recover_every`-th cut also boots and pushes `retry` to the end, which must then run.
fn cut_everywhere(
    name: &str,
    rec: &Recorded,
    geometry: Geometry,
    ranges: [Range<u32>; 2],
    (old, new): (u32, u32),
    retry: Option<&[u8]>,
) -> Result<Counts, String> {
    let mut counts = Counts::default();
    let stride = (rec.log.len() / 8).max(1);
    let n = rec.log.len();
    let mut flash = rec.start.clone();
    for k in 0..=n {
        // Whole: the power went after k writes.
        let runs = boot(&mut flash, geometry, ranges.clone());
        let expected = if k == n { new } else { old };
        if runs != Some(expected) {
            return Err(format!(
                "{name}: cut after {k} of {n} writes runs {runs:x?}"
            ));
        }
        counts.cuts += 1;
        if k == n {
            assert!(flash == rec.end, "{name}: the replay differs from the run");
            break;
        }
        let op = &rec.log[k];
        match op {
            Op::Erase { .. } => counts.erases += 1,
            Op::Program { .. } => counts.writes += 1,
        }
        for cut in [Cut::FirstHalf, Cut::AllButLast] {
            let mut torn = flash.clone();
            apply(&mut torn, geometry, op, cut);
            let runs = boot(&mut torn, geometry, ranges.clone());
            // Only the last write may switch models, and only when whole.
            let allowed = runs == Some(old) || (k + 1 == n && runs == Some(new));
            if !allowed {
                let op_kind = match op {
                    Op::Erase { start, .. } => format!("erase at {start:#x}"),
                    Op::Program { at, bytes } => format!("{} B at {at:#x}", bytes.len()),
                };
                return Err(format!(
                    "{name}: write {k} of {n} torn ({cut:?}, {op_kind}): runs {runs:x?}"
                ));
            }
            counts.cuts += 1;
            if let Some(file) = retry.filter(|_| k % stride == 0 && cut == Cut::FirstHalf) {
                let mut slots = Slots::new(SimFlash::new(torn, geometry), ranges.clone());
                push(&mut slots, file);
                assert_eq!(slots.active().unwrap().header.file_crc, crc(file));
                counts.recoveries += 1;
            }
        }
        apply(&mut flash, geometry, op, Cut::Whole);
    }
    println!(
        "{name}: {n} writes ({} erases, {} programs), {} cut points, a new push after {} of \
         them: every boot ran the old model before the last write and the new one after",
        counts.erases, counts.writes, counts.cuts, counts.recoveries
    );
    Ok(counts)
}

#[test]
fn a_power_cut_at_any_write_of_an_update_leaves_a_valid_model() {
    let (f32_file, f32_other, int8, compact) = (
        model("mnist.digits"),
        other_f32(),
        model("mnist-int8.digits"),
        model("compact.digits"),
    );
    // The mps2-an386's code memory starts as zeros, slot A holding the factory model.
    let start = factory_area(&f32_file);
    let (g, r) = (GEOMETRY, SLOTS);
    let mut total = 0;

    let a = record(start, g, r.clone(), |s| push(s, &int8));
    total += cut_everywhere(
        "push int8 into B",
        &a,
        g,
        r.clone(),
        (crc(&f32_file), crc(&int8)),
        Some(&compact),
    )
    .unwrap()
    .cuts;
    let b = record(a.end.clone(), g, r.clone(), |s| push(s, &f32_other));
    total += cut_everywhere(
        "push f32 into A over the factory model",
        &b,
        g,
        r.clone(),
        (crc(&int8), crc(&f32_other)),
        Some(&compact),
    )
    .unwrap()
    .cuts;
    let c = record(b.end.clone(), g, r.clone(), |s| {
        s.rollback().unwrap();
    });
    total += cut_everywhere(
        "rollback",
        &c,
        g,
        r.clone(),
        (crc(&f32_other), crc(&int8)),
        None,
    )
    .unwrap()
    .cuts;
    let d = record(c.end.clone(), g, r.clone(), |s| push(s, &compact));
    total += cut_everywhere(
        "push compact into the revoked slot",
        &d,
        g,
        r.clone(),
        (crc(&int8), crc(&compact)),
        Some(&f32_file),
    )
    .unwrap()
    .cuts;
    // After all that, the revoked model is gone and the int8 one can still be returned to.
    let mut end = d.end.clone();
    let slots = Slots::new(ram(&mut end, g), r);
    assert_eq!(
        slots.summary().map(|s| s.state),
        [State::Valid, State::Valid]
    );

    // A 256 KiB part: 1 KiB pages, 104 KiB slots, int8 and compact models.
    let mut start = vec![0xFFu8; 208 << 10];
    slot_image(&int8, &mut start[..104 << 10], 960).unwrap();
    let e = record(start, PAGES, PAGE_SLOTS, |s| push(s, &compact));
    total += cut_everywhere(
        "pages: push compact into B",
        &e,
        PAGES,
        PAGE_SLOTS,
        (crc(&int8), crc(&compact)),
        Some(&int8),
    )
    .unwrap()
    .cuts;
    let f = record(e.end.clone(), PAGES, PAGE_SLOTS, |s| push(s, &int8));
    total += cut_everywhere(
        "pages: push int8 into A",
        &f,
        PAGES,
        PAGE_SLOTS,
        (crc(&compact), crc(&int8)),
        Some(&compact),
    )
    .unwrap()
    .cuts;
    println!("{total} cut points in all");
    assert!(total > 3000, "the scenarios shrank: {total} cut points");
}

/// The judge fails on planted faults: an update that skipped one data write but still wrote
/// its commit word, and a rollback whose revoke word went to the wrong slot.
#[test]
fn the_power_cut_check_catches_planted_faults() {
    let (f32_file, compact) = (model("mnist.digits"), model("compact.digits"));
    let start = factory_area(&f32_file);
    let (g, r) = (GEOMETRY, SLOTS);
    let good = record(start.clone(), g, r.clone(), |s| push(s, &compact));
    let models = (crc(&f32_file), crc(&compact));
    cut_everywhere("good", &good, g, r.clone(), models, None).unwrap();

    let mut skipped = Recorded {
        start: start.clone(),
        log: good.log.clone(),
        end: good.end.clone(),
    };
    let middle = skipped.log.len() / 2;
    assert!(matches!(skipped.log[middle], Op::Program { .. }));
    skipped.log.remove(middle);
    let mut end = start.clone();
    for op in &skipped.log {
        apply(&mut end, g, op, Cut::Whole);
    }
    skipped.end = end;
    let e = cut_everywhere("a data write skipped", &skipped, g, r.clone(), models, None);
    println!("planted fault caught: {}", e.as_ref().unwrap_err());
    assert!(e.is_err());

    // A rollback that revokes the other slot instead of the running one.
    let two = record(good.end.clone(), g, r.clone(), |_| {});
    let mut wrong = Recorded {
        start: two.start.clone(),
        log: vec![Op::Program {
            at: digits_core::update::slot::REVOKE_AT,
            bytes: vec![0; 4],
        }],
        end: two.start.clone(),
    };
    apply(&mut wrong.end, g, &wrong.log[0], Cut::Whole);
    let e = cut_everywhere(
        "a wrong revoke",
        &wrong,
        g,
        r,
        (crc(&compact), crc(&f32_file)),
        None,
    );
    println!("planted fault caught: {}", e.as_ref().unwrap_err());
    assert!(e.is_err());
}

mod random {
    //! Random updates with random power cuts: whatever the order of pushes, chunks, commits,
    //! rollbacks and cuts, a boot always finds a valid model, and it is one that was committed.

    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Step {
        /// Push model `file` (an index) in chunks of `chunk` bytes, stopping after `stop` of
        /// them if that comes before the end (then no commit).
        Push {
            file: usize,
            chunk: usize,
            stop: usize,
        },
        /// A chunk at a wrong offset.
        Stray {
            offset: u32,
        },
        Rollback,
        /// The power goes during the next write (torn as `cut` says), then a boot.
        CutNext {
            cut: bool,
        },
        /// A boot.
        Boot,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0usize..3, 1usize..2000, 1usize..200)
                .prop_map(|(file, chunk, stop)| Step::Push { file, chunk, stop }),
            1 => (0u32..20_000).prop_map(|offset| Step::Stray { offset }),
            2 => Just(Step::Rollback),
            2 => any::<bool>().prop_map(|cut| Step::CutNext { cut }),
            1 => Just(Step::Boot),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn random_updates_and_cuts_always_boot_a_committed_model(
            steps in proptest::collection::vec(step(), 1..12),
            cut_at in 0usize..400,
        ) {
            let files = [model("compact.digits"), model("compact-conv.digits"),
                         model("mnist-int8.digits")];
            let mut bytes = vec![0xFFu8; 208 << 10];
            slot_image(&files[0], &mut bytes[..104 << 10], 960).unwrap();
            let mut committed = vec![crc(&files[0])];
            let mut start = bytes.clone();
            let mut slots = Slots::new(SimFlash::new(bytes, PAGES), PAGE_SLOTS);
            let mut cut_next = None;
            for step in steps {
                let before = slots.flash().log.len();
                match step {
                    Step::Push { file, chunk, stop } => {
                        let f = &files[file];
                        if slots.begin(f.len() as u32).is_ok() {
                            let pieces: Vec<_> = f.chunks(chunk).collect();
                            for (k, p) in pieces.iter().enumerate().take(stop) {
                                slots.chunk((k * chunk) as u32, p).unwrap();
                            }
                            if stop >= pieces.len() {
                                slots.commit().unwrap();
                                committed.push(crc(f));
                            }
                        }
                    }
                    Step::Stray { offset } => {
                        let _ = slots.chunk(offset, &[0xAB; 100]);
                    }
                    Step::Rollback => {
                        let _ = slots.rollback();
                    }
                    Step::CutNext { cut } => {
                        cut_next = Some(cut);
                        continue;
                    }
                    Step::Boot => slots.select(),
                }
                // A cut in the writes of this step: undo them from the one cut on, tear it.
                let wrote = slots.flash().log.len() > before;
                if let Some(torn) = cut_next.filter(|_| wrote) {
                    cut_next = None;
                    let log = &slots.flash().log;
                    {
                        let k = before + cut_at % (log.len() - before);
                        let mut image = rebuild(&start, log, k, torn);
                        let runs = boot(&mut image, PAGES, PAGE_SLOTS);
                        prop_assert!(runs.is_some(), "no model after a cut at write {k}");
                        prop_assert!(committed.contains(&runs.unwrap()));
                        start = image.clone();
                        slots = Slots::new(SimFlash::new(image, PAGES), PAGE_SLOTS);
                    }
                }
                let runs = slots.active().map(|a| a.header.file_crc);
                prop_assert!(runs.is_some_and(|c| committed.contains(&c)));
            }
        }
    }

    /// The flash as it was when write `k` of `log` (from `start`) was cut: torn, or not begun.
    fn rebuild(start: &[u8], log: &[Op], k: usize, torn: bool) -> Vec<u8> {
        let mut image = start.to_vec();
        for op in &log[..k] {
            apply(&mut image, PAGES, op, Cut::Whole);
        }
        if torn {
            apply(&mut image, PAGES, &log[k], Cut::FirstHalf);
        }
        image
    }
}
