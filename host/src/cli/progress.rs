//! Progress bars for people: a rate like `44.2k img/s`, and the time left only once it can be
//! estimated (never a confident `0s` before the first measurement).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressState, ProgressStyle};

/// Measured for less than this, a rate says more about start-up than about the work.
const SETTLE: Duration = Duration::from_secs(1);

/// What a bar counts, and what it knows before it starts.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Shown before the bar (`epoch 3/30`).
    pub prefix: String,
    /// Items this bar counts.
    pub len: u64,
    /// What an item is (`img`).
    pub unit: &'static str,
    /// Items of the same work still to come after this bar's (the later epochs): the time
    /// left is the whole run's.
    pub after: u64,
    /// Items per second measured before (the previous epoch's): the estimate until this bar
    /// has measured its own.
    pub known_rate: Option<f64>,
}

impl Progress {
    /// A bar on stderr (hidden when stderr is not a terminal).
    pub fn bar(self) -> ProgressBar {
        let bar = ProgressBar::new(self.len);
        let Progress {
            prefix,
            unit,
            after,
            known_rate,
            ..
        } = self;
        let rate = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            if let Some(r) = measured(state).or(known_rate) {
                let _ = write!(w, "{} {unit}/s", si(r));
            }
        };
        let left = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let Some(r) = measured(state).or(known_rate).filter(|&r| r > 0.0) else {
                return;
            };
            let to_do = state.len().unwrap_or(0).saturating_sub(state.pos()) + after;
            let _ = write!(w, "about {} left", duration(to_do as f64 / r));
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {human_pos}/{human_len} {msg}  {rate}  {left}",
            )
            .expect("valid template")
            .with_key("rate", rate)
            .with_key("left", left)
            .progress_chars("=> "),
        );
        bar.set_prefix(prefix);
        bar
    }
}

/// This bar's own rate, once it has run long enough to have one.
fn measured(state: &ProgressState) -> Option<f64> {
    let elapsed = state.elapsed();
    (elapsed >= SETTLE && state.pos() > 0).then(|| state.pos() as f64 / elapsed.as_secs_f64())
}

/// `950`, `44.2k`, `1.35M`: three significant digits at most.
pub fn si(x: f64) -> String {
    let (value, suffix) = match x.abs() {
        // Where rounding to three digits would print `1000k`, the next unit up.
        a if a >= 999.5e6 => (x / 1e9, "G"),
        a if a >= 999.5e3 => (x / 1e6, "M"),
        a if a >= 999.5 => (x / 1e3, "k"),
        _ => (x, ""),
    };
    let decimals = match value.abs() {
        a if a >= 99.95 => 0,
        a if a >= 9.995 => 1,
        _ => 2,
    };
    let decimals = if suffix.is_empty() && value.abs() >= 10.0 {
        0
    } else {
        decimals
    };
    format!("{value:.decimals$}{suffix}")
}

/// `45s`, `3m 12s`, `2h 05m`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_like_a_person_would_write_them() {
        let cases = [
            (44_206.183_6, "44.2k"),
            (417.3, "417"),
            (9.5, "9.50"),
            (999_999.0, "1.00M"),
            (1_350_000.0, "1.35M"),
            (12.0, "12"),
        ];
        for (x, text) in cases {
            assert_eq!(si(x), text, "{x}");
        }
        assert_eq!(duration(0.2), "0s");
        assert_eq!(duration(45.0), "45s");
        assert_eq!(duration(192.0), "3m 12s");
        assert_eq!(duration(7500.0), "2h 05m");
    }
}
