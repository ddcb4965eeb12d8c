//! The "not learning" stop: a run whose loss stays finite but whose accuracy stays at chance
//! (a learning rate so high that it kills the hidden units, or momentum that was already wild
//! when a checkpoint was resumed) would otherwise train to its last epoch and write a model
//! that guesses.
//!
//! The rule, checked after every epoch once the run has taken [`MIN_UPDATES`] steps: both the
//! epoch's training accuracy and the validation accuracy are at most [`CHANCE`], twice what
//! guessing scores. A network that learns leaves chance within its first few dozen updates
//! (even at one update an epoch, a tiny learning rate or on distorted images), so after
//! [`MIN_UPDATES`] it is far above twice chance on both sets; asking for both keeps a small
//! validation split's noise from stopping a run on its own.

use crate::evaluate::metrics::CLASSES;
use crate::train::EpochReport;

/// Steps (mini-batches) a run takes before it is judged: many times what a learning network
/// needs to leave chance, and below what any run of the tests' quick sizes takes in the epochs
/// that it trains.
pub const MIN_UPDATES: usize = 200;

/// The highest accuracy that is still chance level: twice a uniform guess's.
pub const CHANCE: f64 = 2.0 / CLASSES as f64;

/// Training went on without learning: after [`MIN_UPDATES`], both accuracies at chance (the
/// training accuracy alone without a validation split).
#[derive(Debug, thiserror::Error)]
#[error(
    "training is not learning: after epoch {epoch} ({updates} updates) it classifies {:.2}% of \
     the epoch's training images{}, at chance level (guessing scores 1 in {CLASSES})",
    100.0 * train_accuracy,
    val_accuracy.map(|v| format!(" and {:.2}% of the validation images", 100.0 * v)).unwrap_or_default()
)]
pub struct NotLearning {
    /// The epoch, from 1.
    pub epoch: u32,
    /// Steps taken since the run started (before any resume too).
    pub updates: usize,
    /// The epoch's training accuracy.
    pub train_accuracy: f64,
    /// Accuracy on the validation split after the epoch (none without one).
    pub val_accuracy: Option<f64>,
}

/// Judges the epoch `report`, the run having taken `updates` steps in all.
pub fn check(report: &EpochReport, updates: usize) -> Result<(), NotLearning> {
    let stalled = updates >= MIN_UPDATES
        && report.train_accuracy <= CHANCE
        && report.val_accuracy.is_none_or(|v| v <= CHANCE);
    if stalled {
        return Err(NotLearning {
            epoch: report.epoch,
            updates,
            train_accuracy: report.train_accuracy,
            val_accuracy: report.val_accuracy,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(train_accuracy: f64, val_accuracy: impl Into<Option<f64>>) -> EpochReport {
        let val_accuracy = val_accuracy.into();
        EpochReport {
            epoch: 3,
            lr: 0.05,
            train_loss: 2.3,
            train_accuracy,
            val_loss: val_accuracy.map(|_| 2.3),
            val_accuracy,
            seconds: 1.0,
            samples_per_second: 1.0,
        }
    }

    #[test]
    fn stops_only_when_both_accuracies_are_at_chance_after_enough_updates() {
        assert!(check(&report(0.1, 0.1), MIN_UPDATES).is_err());
        assert!(check(&report(CHANCE, CHANCE), MIN_UPDATES + 1).is_err());
        assert!(check(&report(0.1, 0.1), MIN_UPDATES - 1).is_ok());
        assert!(check(&report(0.1, 0.5), MIN_UPDATES).is_ok());
        assert!(check(&report(0.5, 0.1), MIN_UPDATES).is_ok());
    }

    #[test]
    fn without_a_validation_split_the_training_accuracy_decides() {
        let stalled = check(&report(0.1, None), MIN_UPDATES).unwrap_err();
        assert!(!stalled.to_string().contains("validation"), "{stalled}");
        assert!(check(&report(0.5, None), MIN_UPDATES).is_ok());
        assert!(check(&report(0.1, None), MIN_UPDATES - 1).is_ok());
    }
}
