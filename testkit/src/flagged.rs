//! Counting what a "not a digit" verdict flags: the one count the verdict's tests share
//! (`core/tests/verdict.rs` on single pictures, `host/tests/not_a_digit.rs` on whole sets),
//! kept apart from the bench's own count so that a test does not judge the bench by itself.

/// The pictures a verdict flagged, out of all it judged.
#[derive(Clone, Debug)]
pub struct Flagged<T> {
    /// What was said of each flagged picture (its index and reason, say), in order.
    pub flags: Vec<T>,
    /// Pictures judged.
    pub judged: usize,
}

impl<T> Flagged<T> {
    /// Pictures flagged.
    pub fn count(&self) -> usize {
        self.flags.len()
    }

    /// Share flagged, in percent (0 of nothing judged).
    pub fn percent(&self) -> f64 {
        100.0 * self.count() as f64 / self.judged.max(1) as f64
    }
}

/// Judges every one of `pictures` with `flag`, which says something (`Some`) of a flagged one.
pub fn count_flagged<P, T>(
    pictures: impl IntoIterator<Item = P>,
    mut flag: impl FnMut(P) -> Option<T>,
) -> Flagged<T> {
    let mut flagged = Flagged {
        flags: Vec::new(),
        judged: 0,
    };
    for picture in pictures {
        flagged.judged += 1;
        flagged.flags.extend(flag(picture));
    }
    flagged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_flagged_and_keeps_what_was_said() {
        let f = count_flagged(1..=8, |n: u32| n.is_multiple_of(4).then_some(n));
        assert_eq!((f.count(), f.judged, f.flags), (2, 8, vec![4, 8]));
        assert_eq!(
            count_flagged(1..=8, |n: u32| (n > 6).then_some(())).percent(),
            25.0
        );
        assert_eq!(count_flagged(0..0, |_: u32| Some(())).percent(), 0.0);
    }
}
