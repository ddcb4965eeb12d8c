//! How a step runs its two independent parts: one after the other here, at once on the host.

/// Runs two closures that share nothing mutable, both to completion before returning, in
/// either order or at the same time. The step's result never depends on which: every part
/// writes only its own memory, and every sum runs in a fixed order inside one part.
pub trait Join {
    /// Runs `a` and `b`; returns when both are done.
    fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce() + Send,
        B: FnOnce() + Send;
}

/// `a`, then `b`, on the calling thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sequential;

impl Join for Sequential {
    #[inline(always)]
    fn join<A, B>(&mut self, a: A, b: B)
    where
        A: FnOnce() + Send,
        B: FnOnce() + Send,
    {
        a();
        b();
    }
}
