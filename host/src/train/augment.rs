//! Training-time augmentation: each training image distorted afresh every epoch, as a
//! different writer might have drawn it, by the recipe `--augment` names. Deterministic: the
//! distortion of image `i` in epoch `e` depends only on (seed, e, i), so runs repeat exactly
//! and can use any number of threads. The distortions themselves are [`crate::distort`]'s.

use digits_core::Rng;

use crate::distort::{Affine, Elastic, Field, Warp};

/// What `--augment` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Recipe {
    /// The training images as they are.
    None,
    /// Random rotation (up to 6 degrees either way), scale (0.94-1.06) and shift (up to 1.5
    /// pixels each way).
    Affine,
    /// Random elastic distortions (alpha 34, sigma 6) on top of the affine ones.
    Elastic,
}

impl Recipe {
    /// The recipe's distortions (`None` for no augmentation).
    pub fn augment(self) -> Option<Augment> {
        // Milder than BitNetMCU's (10 degrees, 0.9-1.1, 10% of the side): 128 hidden units
        // learn the undistorted digits better from these (docs/figures.md).
        let affine = Augment {
            max_rotation_deg: 6.0,
            max_scale: 0.06,
            max_shear: 0.0,
            max_shift: 1.5,
            elastic: None,
        };
        match self {
            Recipe::None => None,
            Recipe::Affine => Some(affine),
            Recipe::Elastic => Some(Augment {
                elastic: Some(Elastic {
                    alpha: 34.0,
                    sigma: 6.0,
                }),
                ..affine
            }),
        }
    }
}

/// How strong the random distortions are.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Augment {
    /// Largest rotation, degrees.
    pub max_rotation_deg: f64,
    /// Largest relative change of scale.
    pub max_scale: f64,
    /// Largest shear.
    pub max_shear: f64,
    /// Largest shift, pixels.
    pub max_shift: f64,
    /// Elastic distortions on top, if any.
    pub elastic: Option<Elastic>,
}

/// Elastic fields drawn once per run and picked from.
const FIELDS: usize = 4096;

/// A run's distortions, ready to apply: the recipe and its bank of elastic fields.
pub struct Distorter {
    augment: Augment,
    seed: u64,
    fields: Vec<Field>,
}

impl Augment {
    /// The distortions of a run of seed `seed` (draws its elastic fields).
    pub fn distorter(&self, seed: u64) -> Distorter {
        let fields = match &self.elastic {
            Some(e) => e.bank(seed ^ 0xE1A5_71C0_F1E1_D500, FIELDS),
            None => Vec::new(),
        };
        Distorter {
            augment: *self,
            seed,
            fields,
        }
    }
}

impl Distorter {
    /// The distorted image `index` of epoch `epoch`.
    pub fn apply(&self, image: &[u8; 784], epoch: u32, index: u32) -> [u8; 784] {
        let a = &self.augment;
        let mix = self.seed
            ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (index as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        let mut rng = Rng::new(mix);
        let mut sym = |max: f64| rng.uniform_in(-1.0, 1.0) * max;
        let affine = Affine {
            rotation_deg: sym(a.max_rotation_deg),
            scale: 1.0 + sym(a.max_scale),
            shear: sym(a.max_shear),
            dx: sym(a.max_shift),
            dy: sym(a.max_shift),
        };
        let warp: Warp = affine.warp();
        let field = (!self.fields.is_empty())
            .then(|| &self.fields[rng.below(self.fields.len() as u64) as usize]);
        warp.apply(image, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digit() -> [u8; 784] {
        testkit::slice().train.images[3]
    }

    #[test]
    fn no_distortion_is_the_identity() {
        let none = Augment {
            max_rotation_deg: 0.0,
            max_scale: 0.0,
            max_shear: 0.0,
            max_shift: 0.0,
            elastic: None,
        };
        assert_eq!(none.distorter(1).apply(&digit(), 2, 3), digit());
    }

    #[test]
    fn distortions_are_deterministic_small_and_keep_the_ink() {
        for recipe in [Recipe::Affine, Recipe::Elastic] {
            let d = recipe.augment().expect("a recipe").distorter(5);
            let a = d.apply(&digit(), 1, 9);
            assert_eq!(
                a,
                recipe.augment().unwrap().distorter(5).apply(&digit(), 1, 9)
            );
            assert_ne!(a, d.apply(&digit(), 2, 9));
            assert_ne!(a, d.apply(&digit(), 1, 10));
            let ink = |img: &[u8; 784]| img.iter().map(|&v| v as f64).sum::<f64>();
            let ratio = ink(&a) / ink(&digit());
            assert!((0.6..1.4).contains(&ratio), "{recipe:?}: ink ratio {ratio}");
        }
    }
}
