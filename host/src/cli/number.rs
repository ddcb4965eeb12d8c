//! Numbers within their valid range: `#[arg(value_parser = Within::above(0.0))]` refuses
//! `--lr 0`, `--lr -1`, `--lr nan` and `--lr inf` with one line that gives the range. The same
//! ranges judge what only the data can decide ([`Within::require`]), in the same words.

use std::ffi::OsStr;
use std::fmt::Display;
use std::str::FromStr;

use clap::builder::TypedValueParser;

/// A kind of number an option takes.
pub trait Number: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static {
    /// "a whole number" or "a finite number": what the messages call it.
    const KIND: &'static str;
    /// Whether the value is finite (integers always are).
    fn finite(self) -> bool;
}

macro_rules! whole {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const KIND: &'static str = "a whole number";
            fn finite(self) -> bool {
                true
            }
        }
    )*};
}
whole!(u32, u64, usize);

macro_rules! float {
    ($($t:ty),*) => {$(
        impl Number for $t {
            const KIND: &'static str = "a finite number";
            fn finite(self) -> bool {
                self.is_finite()
            }
        }
    )*};
}
float!(f32, f64);

#[derive(Clone, Copy, Debug)]
enum Limit<T> {
    None,
    Inclusive(T),
    Exclusive(T),
}

/// The valid values of a numeric option: finite, within a lower and an upper limit (each
/// optional, inclusive or not). A clap value parser.
#[derive(Clone, Copy, Debug)]
pub struct Within<T> {
    low: Limit<T>,
    high: Limit<T>,
}

impl<T: Number> Within<T> {
    /// Any finite value.
    pub const fn any() -> Self {
        Self {
            low: Limit::None,
            high: Limit::None,
        }
    }

    /// `low` or more.
    pub const fn at_least(low: T) -> Self {
        Self {
            low: Limit::Inclusive(low),
            high: Limit::None,
        }
    }

    /// More than `low`.
    pub const fn above(low: T) -> Self {
        Self {
            low: Limit::Exclusive(low),
            high: Limit::None,
        }
    }

    /// And at most `high`.
    pub const fn at_most(self, high: T) -> Self {
        Self {
            high: Limit::Inclusive(high),
            ..self
        }
    }

    /// And less than `high`.
    pub const fn below(self, high: T) -> Self {
        Self {
            high: Limit::Exclusive(high),
            ..self
        }
    }

    /// Whether `value` is valid.
    pub fn contains(&self, value: T) -> bool {
        let low = match self.low {
            Limit::None => true,
            Limit::Inclusive(l) => value >= l,
            Limit::Exclusive(l) => value > l,
        };
        let high = match self.high {
            Limit::None => true,
            Limit::Inclusive(h) => value <= h,
            Limit::Exclusive(h) => value < h,
        };
        value.finite() && low && high
    }

    /// What is valid, as the messages say it: `a whole number from 1 to 32`, `a finite number
    /// > 0`, `a finite number >= 0 and < 1`.
    pub fn describe(&self) -> String {
        let kind = T::KIND;
        match (self.low, self.high) {
            (Limit::Inclusive(l), Limit::Inclusive(h)) => format!("{kind} from {l} to {h}"),
            (Limit::Inclusive(l), Limit::None) => format!("{kind}, at least {l}"),
            (low, high) => {
                let low = match low {
                    Limit::None => None,
                    Limit::Inclusive(l) => Some(format!(">= {l}")),
                    Limit::Exclusive(l) => Some(format!("> {l}")),
                };
                let high = match high {
                    Limit::None => None,
                    Limit::Inclusive(h) => Some(format!("<= {h}")),
                    Limit::Exclusive(h) => Some(format!("< {h}")),
                };
                let bounds: Vec<String> = low.into_iter().chain(high).collect();
                if bounds.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind} {}", bounds.join(" and "))
                }
            }
        }
    }

    /// Parses and checks `text`; the error says what would be valid.
    pub fn parse(&self, text: &str) -> Result<T, String> {
        match text.trim().parse::<T>() {
            Ok(value) if self.contains(value) => Ok(value),
            _ => Err(format!("must be {}", self.describe())),
        }
    }

    /// Checks `value` of `option` against limits that only the data sets (`why` says how),
    /// in the words of the command-line check: `--batch 100000 must be a whole number from 1
    /// to 800 (why)`.
    pub fn require(&self, option: &str, value: T, why: &str) -> anyhow::Result<()> {
        if self.contains(value) {
            return Ok(());
        }
        anyhow::bail!("{option} {value} must be {} ({why})", self.describe())
    }
}

impl<T: Number> TypedValueParser for Within<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        self.parse(&value.to_string_lossy())
            .map_err(|why| super::invalid(cmd, arg, value, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_must_be_finite_and_within_the_limits() {
        let lr = Within::above(0.0f64);
        assert_eq!(lr.parse("0.05"), Ok(0.05));
        assert_eq!(lr.parse("1e4"), Ok(1e4));
        for bad in ["0", "-1", "nan", "NaN", "inf", "-inf", "", "x", "0.05x"] {
            assert_eq!(
                lr.parse(bad),
                Err("must be a finite number > 0".to_string()),
                "{bad}"
            );
        }
        let momentum = Within::at_least(0.0f64).below(1.0);
        assert_eq!(momentum.parse("0"), Ok(0.0));
        assert_eq!(momentum.parse("0.99"), Ok(0.99));
        for bad in ["1", "1.5", "-0.1"] {
            assert_eq!(
                momentum.parse(bad),
                Err("must be a finite number >= 0 and < 1".to_string())
            );
        }
        assert!(Within::<f32>::any().parse("inf").is_err());
        assert_eq!(Within::<f32>::any().parse("-3"), Ok(-3.0));
    }

    #[test]
    fn whole_numbers_name_their_range() {
        let batch = Within::at_least(1usize).at_most(32);
        assert_eq!(batch.parse("32"), Ok(32));
        assert_eq!(
            batch.parse("33"),
            Err("must be a whole number from 1 to 32".to_string())
        );
        let epochs = Within::at_least(1u32);
        assert_eq!(
            epochs.parse("-1"),
            Err("must be a whole number, at least 1".to_string())
        );
        assert_eq!(epochs.parse("0"), epochs.parse("1.5").map(|_| 0));
        let err = Within::at_least(1usize)
            .at_most(800)
            .require("--batch", 100_000, "the training split")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--batch 100000 must be a whole number from 1 to 800 (the training split)"
        );
    }
}
