//! Two threads that split a step's work between them, with a hand-off short enough for steps of
//! a few hundred microseconds.
//!
//! Why not `rayon::join`: between two joins rayon's idle workers fall asleep, and waking a
//! sleeping thread costs tens of microseconds (more in a virtual machine), several times per
//! training step. Here the second thread spins while work is likely to come (a step's phases,
//! the next step) and only parks after [`SPIN`] without work, e.g. during an evaluation.
//!
//! [`Pair::join`] runs its two closures at once and returns when both are done, like
//! `rayon::join`: they may borrow from the caller's stack.

use std::any::Any;
use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long the second thread waits for work by spinning before it parks.
const SPIN: Duration = Duration::from_micros(500);

const IDLE: u8 = 0;
const POSTED: u8 = 1;
const DONE: u8 = 2;
const EXIT: u8 = 3;

/// A job lent to the second thread: a closure on the caller's stack, its lifetime erased.
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
// `state` (the release store / acquire load on `state` orders the accesses).
unsafe impl Sync for Slot {}
// SAFETY: the job pointer is sent to the worker only while `join` waits for it to finish.
unsafe impl Send for Slot {}

/// One calling thread and, if there is more than one core, one worker.
pub struct Pair {
    slot: Arc<Slot>,
    worker: Option<JoinHandle<()>>,
}

impl Pair {
    /// A pair with a worker when `threads > 1`; with one thread, [`join`](Self::join) runs
    /// both closures on the caller, one after the other.
    pub fn new(threads: usize) -> Self {
        let slot = Arc::new(Slot {
            state: AtomicU8::new(IDLE),
            job: UnsafeCell::new(None),
            panic: UnsafeCell::new(None),
        });
        let worker = (threads > 1).then(|| {
            let slot = Arc::clone(&slot);
            thread::Builder::new()
                .name("digits-pair".into())
                .spawn(move || work(&slot))
                .expect("spawn the second training thread")
        });
        Self { slot, worker }
    }

    /// Runs `a` on this thread and `b` on the worker at the same time (or both here, `a`
    /// first, without a worker); returns when both are done. A panic in either is resumed
    /// here after both have finished.
    pub fn join<A, B>(&self, a: A, b: B)
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
        // SAFETY: the slot is `IDLE`, so the worker does not read `job`.
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

impl Drop for Pair {
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
        // SAFETY: the closure lives on the caller's stack until `DONE` (see `Pair::join`).
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
            let pair = Pair::new(threads);
            let (mut left, mut right) = (vec![0u64; 1000], vec![0u64; 1000]);
            for round in 0..2000u64 {
                pair.join(
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
        let pair = Pair::new(2);
        let here = thread::current().id();
        let mut there = here;
        pair.join(|| {}, || there = thread::current().id());
        assert_ne!(here, there);
    }

    #[test]
    fn a_panic_in_either_reaches_the_caller_after_both_finished() {
        let pair = Pair::new(2);
        let finished = AtomicUsize::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            pair.join(
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
        let r = catch_unwind(AssertUnwindSafe(|| pair.join(|| {}, || panic!("right"))));
        assert!(r.is_err());
        // Still usable afterwards; waking after a long idle (parked) works too.
        thread::sleep(Duration::from_millis(5));
        let mut x = 0;
        pair.join(|| {}, || x = 7);
        assert_eq!(x, 7);
    }
}
