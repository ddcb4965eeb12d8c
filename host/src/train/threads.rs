//! [`TwoThreads`]: the calling thread and one spinning worker, which split each phase of a
//! training step between them, with a hand-off short enough for steps that take far less than
//! a millisecond.
//!
//! Why not `rayon::join`: between two joins rayon's idle workers fall asleep, and waking a
//! sleeping thread costs a large share of such a step, several times per step. Here the worker
//! spins while work is likely to come (a step's phases, the next step) and only parks after
//! `SPIN` without work, e.g. during an evaluation.
//!
//! [`TwoThreads::join`] runs its two closures at once and returns when both are done, like
//! `rayon::join`: they may borrow from the caller's stack.
//!
//! # Why misuse cannot compile
//!
//! The two threads share one job slot, which is sound only while a single `join` at a time
//! uses it. `join` takes `&mut self`, so the borrow checker guarantees that:
//! - two threads cannot join on the same `TwoThreads` at once (each would need a `&mut`);
//! - a closure given to `join` cannot join on the same `TwoThreads` again (it is already
//!   borrowed mutably for the whole call):
//!
//! ```compile_fail,E0499
//! let mut threads = host::train::threads::TwoThreads::new(2);
//! threads.join(|| threads.join(|| {}, || {}), || {});
//! ```
//!
//! A closure may use another `TwoThreads` (it has its own worker and slot), and one may be
//! reused for any number of joins (`tests::nested_on_another_and_reused`).

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the worker waits for work by spinning before it parks.
const SPIN: Duration = Duration::from_micros(500);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const EXIT: u8 = 3;

/// A job lent to the worker: a closure on the caller's stack, its lifetime erased.
type Job = *mut (dyn FnMut() + Send);

/// What the two threads share.
struct Slot {
    /// [`IDLE`] -> [`POSTED`] (by the caller) -> [`DONE`] (by the worker) -> [`IDLE`].
    state: AtomicU8,
    /// Written by the caller before `POSTED`, read by the worker after it.
    job: UnsafeCell<Option<Job>>,
    /// Written by the worker before `DONE`, read by the caller after it.
    panic: UnsafeCell<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` and `panic` are only accessed by the side that owns them in the current
// `state` (the release store / acquire load on `state` orders the accesses), and only one
// `join` at a time posts a job (it takes `&mut TwoThreads`, which owns the only caller's
// handle on the slot).
unsafe impl Sync for Slot {}
// SAFETY: the job pointer is sent to the worker only while `join` waits for it to finish.
unsafe impl Send for Slot {}

/// The calling thread and, if there is more than one core, one worker.
pub struct TwoThreads {
    slot: Arc<Slot>,
    worker: Option<JoinHandle<()>>,
}

impl TwoThreads {
    /// With a worker when `threads > 1`; with one thread, [`join`](Self::join) runs both
    /// closures on the caller, one after the other.
    pub fn new(threads: usize) -> Self {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(None),
            panic: UnsafeCell::new(None),
        });
        let worker = (threads > 1).then(|| {
            let slot = Arc::clone(&slot);
            thread::Builder::new()
                .name("digits-worker".into())
                .spawn(move || work(&slot))
                .expect("spawn the second training thread")
        });
        Self { slot, worker }
    }

    /// Runs `a` on this thread and `b` on the worker at the same time (or both here, `a`
    /// first, without a worker); returns when both are done. A panic in either is resumed
    /// here after both have finished.
    pub fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce(),
        B: FnOnce() + Send,
    {
        let Some(worker) = &self.worker else {
            a();
            b();
            return;
        };
        let mut b = Some(b);
        let mut run_b = move || {
            if let Some(b) = b.take() {
                b()
            }
        };
        let job: *mut (dyn FnMut() + Send + '_) = &mut run_b;
        // SAFETY: only the lifetime is erased; `run_b` outlives its use, because this function
        // does not return (nor unwind) before the worker reports `DONE`.
        let job: Job = unsafe { std::mem::transmute(job) };
        // SAFETY: the slot is `IDLE` (every `join` leaves it so, and `&mut self` excludes any
        // other `join`), so the worker does not read `job`.
        unsafe { *self.slot.job.get() = Some(job) };
        self.slot.state.store(POSTED, Ordering::Release);
        worker.thread().unpark();
        let a_result = catch_unwind(AssertUnwindSafe(a));
        let start = Instant::now();
        let mut spins = 0u32;
        while self.slot.state.load(Ordering::Acquire) != DONE {
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                // The worker was descheduled: let it run.
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        // SAFETY: `DONE`: the worker has finished with the slot.
        let b_panic = unsafe { (*self.slot.panic.get()).take() };
        self.slot.state.store(IDLE, Ordering::Relaxed);
        if let Err(p) = a_result {
            resume_unwind(p);
        }
        if let Some(p) = b_panic {
            resume_unwind(p);
        }
    }
}

impl Drop for TwoThreads {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            self.slot.state.store(EXIT, Ordering::Release);
            worker.thread().unpark();
            // A panic of the worker itself (not of a job) cannot happen: jobs are caught.
            let _ = worker.join();
        }
    }
}

/// The worker: waits for a job (spinning, then parked), runs it, reports `DONE`.
fn work(slot: &Slot) {
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let state = loop {
            let s = slot.state.load(Ordering::Acquire);
            if s == POSTED || s == EXIT {
                break s;
            }
            spins += 1;
            if spins.is_multiple_of(64) && start.elapsed() > SPIN {
                // Unparked by every `join` and by `drop`; a spurious wake-up just loops.
                thread::park_timeout(Duration::from_millis(100));
            } else {
                std::hint::spin_loop();
            }
        };
        if state == EXIT {
            return;
        }
        // SAFETY: `POSTED`: the caller wrote the job and waits for `DONE` before touching it.
        let job = unsafe { (*slot.job.get()).take() }.expect("a posted job");
        // SAFETY: the closure lives on the caller's stack until `DONE` (see `TwoThreads::join`).
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { (*job)() }));
        // SAFETY: the caller reads `panic` only after `DONE`.
        unsafe { *slot.panic.get() = result.err() };
        slot.state.store(DONE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn both_closures_run_and_may_borrow_mutably() {
        for threads in [1, 2] {
            let mut two = TwoThreads::new(threads);
            let (mut left, mut right) = (vec![0u64; 1000], vec![0u64; 1000]);
            for round in 0..2000u64 {
                two.join(
                    || left.iter_mut().for_each(|x| *x += round),
                    || right.iter_mut().for_each(|x| *x += 2 * round),
                );
            }
            let sum: u64 = (0..2000).sum();
            assert!(left.iter().all(|&x| x == sum), "{threads} threads");
            assert!(right.iter().all(|&x| x == 2 * sum), "{threads} threads");
        }
    }

    #[test]
    fn the_second_closure_runs_on_another_thread_when_there_are_two() {
        let mut two = TwoThreads::new(2);
        let here = thread::current().id();
        let mut there = here;
        two.join(|| {}, || there = thread::current().id());
        assert_ne!(here, there);
    }

    /// Joins inside joins, each on its own `TwoThreads` (the same one cannot compile, see the
    /// module docs), on the caller's side and on the worker's, then the outer one reused.
    #[test]
    fn nested_on_another_and_reused() {
        let mut outer = TwoThreads::new(2);
        let (mut inner_a, mut inner_b) = (TwoThreads::new(2), TwoThreads::new(2));
        let mut cells = [0u32; 4];
        for round in 1..=100 {
            let [c0, c1, c2, c3] = &mut cells;
            outer.join(
                || inner_a.join(|| *c0 += round, || *c1 += 2 * round),
                || inner_b.join(|| *c2 += 3 * round, || *c3 += 4 * round),
            );
        }
        let sum: u32 = (1..=100).sum();
        assert_eq!(cells, [sum, 2 * sum, 3 * sum, 4 * sum]);
        // Moved to another thread and used there: it is `Send`, and `&mut` goes with it.
        let mut x = 0;
        thread::scope(|s| {
            s.spawn(|| outer.join(|| {}, || x = 9));
        });
        assert_eq!(x, 9);
    }

    #[test]
    fn a_panic_in_either_reaches_the_caller_after_both_finished() {
        let mut two = TwoThreads::new(2);
        let finished = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            two.join(
                || panic!("left"),
                || {
                    thread::sleep(Duration::from_millis(20));
                    finished.fetch_add(1, Ordering::SeqCst);
                },
            )
        }));
        assert!(r.is_err());
        assert_eq!(
            finished.load(Ordering::SeqCst),
            1,
            "b finished before the panic"
        );
        let r = catch_unwind(AssertUnwindSafe(|| two.join(|| {}, || panic!("right"))));
        assert!(r.is_err());
        // Still usable afterwards; waking after a long idle (parked) works too.
        thread::sleep(Duration::from_millis(5));
        let mut x = 0;
        two.join(|| {}, || x = 7);
        assert_eq!(x, 7);
    }
}
