//! What every benchmark does with its timings: time a call, take the median of repeats.

use std::time::Instant;

/// The middle value of `values` (of an even count, the upper of the two middle ones, so the
/// result is always one of the values measured). Panics on no values or on NaN.
pub fn median<T: Copy + PartialOrd>(values: impl IntoIterator<Item = T>) -> T {
    let mut v: Vec<T> = values.into_iter().collect();
    assert!(!v.is_empty(), "the median of no values");
    v.sort_by(|a, b| a.partial_cmp(b).expect("values without an order (NaN?)"));
    v[v.len() / 2]
}

/// Runs `f`; returns its wall time in seconds and its result.
pub fn time<T>(f: impl FnOnce() -> T) -> (f64, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed().as_secs_f64(), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_unsorted_counts() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(median([7u64]), 7);
        assert_eq!(median(vec![5u64, 1, 9, 9]), 9);
    }

    #[test]
    #[should_panic(expected = "no values")]
    fn median_of_nothing_is_refused() {
        median(Vec::<f64>::new());
    }
}
