//! Learning-rate schedules, as a function of the epoch (or any step counter).

/// How the learning rate changes over training.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// The base rate throughout.
    Constant,
    /// Multiplied by `gamma` every `every` epochs (`every` > 0).
    Step {
        /// Epochs between decays.
        every: u32,
        /// Decay factor.
        gamma: f64,
    },
    /// Multiplied by `gamma` every epoch.
    Exponential {
        /// Decay factor per epoch.
        gamma: f64,
    },
    /// Half a cosine from the base rate down to `floor` over `total` epochs, then `floor`.
    Cosine {
        /// Length of the schedule in epochs (> 0).
        total: u32,
        /// Final learning rate.
        floor: f64,
    },
}

impl Schedule {
    /// The learning rate at `epoch` (counted from 0) for base rate `base`.
    pub fn lr(&self, base: f64, epoch: u32) -> f64 {
        match *self {
            Schedule::Constant => base,
            Schedule::Step { every, gamma } => {
                base * libm::pow(gamma, (epoch / every.max(1)) as f64)
            }
            Schedule::Exponential { gamma } => base * libm::pow(gamma, epoch as f64),
            Schedule::Cosine { total, floor } => {
                if epoch >= total {
                    floor
                } else {
                    let t = epoch as f64 / total as f64;
                    floor + (base - floor) * 0.5 * (1.0 + libm::cos(core::f64::consts::PI * t))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn schedules_give_the_expected_values() {
        assert_eq!(Schedule::Constant.lr(0.1, 37), 0.1);

        let step = Schedule::Step {
            every: 3,
            gamma: 0.5,
        };
        let got: [f64; 7] = core::array::from_fn(|e| step.lr(0.8, e as u32));
        assert_eq!(got, [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2]);

        let exp = Schedule::Exponential { gamma: 0.9 };
        assert!(close(exp.lr(1.0, 0), 1.0));
        assert!(close(exp.lr(1.0, 2), 0.81));
        assert!(close(exp.lr(2.0, 10), 2.0 * 0.9f64.powi(10)));

        let cos = Schedule::Cosine {
            total: 4,
            floor: 0.0,
        };
        let got: [f64; 6] = core::array::from_fn(|e| cos.lr(1.0, e as u32));
        let half = core::f64::consts::FRAC_1_SQRT_2;
        let expected = [1.0, 0.5 + 0.5 * half, 0.5, 0.5 - 0.5 * half, 0.0, 0.0];
        for (g, e) in got.iter().zip(expected) {
            assert!(close(*g, e), "{got:?} vs {expected:?}");
        }
        let floored = Schedule::Cosine {
            total: 2,
            floor: 0.01,
        };
        assert!(close(floored.lr(0.1, 1), 0.055));
        assert!(close(floored.lr(0.1, 9), 0.01));
    }
}
