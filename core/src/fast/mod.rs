//! The fast paths: the same arithmetic as the reference modules, bit for bit, with less memory
//! traffic. Read the reference ([`Dense`](crate::Dense), [`Mlp`](crate::Mlp),
//! [`Sgd`](crate::Sgd), [`normalize`](crate::pixels::normalize)) to learn what is computed;
//! read these to see how it is computed fast, and trust them because a test compares the two:
//!
//! | module | equals, bit for bit | proved by |
//! |---|---|---|
//! | [`sparse`] | [`normalize`](crate::pixels::normalize) (its [`PIXEL_TO_INPUT`](sparse::PIXEL_TO_INPUT) table) | `fast::sparse::tests::the_table_is_normalize` |
//! | [`logits`] | [`normalize`](crate::pixels::normalize) then [`Mlp::logits`](crate::Mlp::logits); [`Dense::forward`](crate::Dense::forward) | `fast::logits::tests::logits_from_pixels_are_normalize_then_logits`, `fast::logits::tests::listed_forward_is_the_dense_forward` |
//! | [`minibatch`] | [`Mlp::backprop`](crate::Mlp::backprop) then [`Sgd::step`](crate::Sgd::step), with [`Separate`](mul_add::Separate) multiply-adds and one range of pixels | `fast::minibatch::tests::one_range_is_backprop_then_sgd_bit_for_bit` |
//! | [`pairs`] (the Cortex-M4F firmware's compact inference) | [`Layer::accumulate_row`](crate::compact::Layer::accumulate_row) | `fast::pairs::tests::pairs_equal_the_byte_kernel`; `core/tests/compact.rs`, `the_pair_kernel_gives_the_byte_kernels_logits` |
//! | [`mul_add`] | `a * b + c` ([`Separate`](mul_add::Separate)), or rounded once as the CPU's fused instruction ([`FusedSoft`](mul_add::FusedSoft)) | `fast::mul_add::tests::fused_rounds_once`; the host's `simd::tests` |
//!
//! Where a fast path may also differ from the reference, the difference is a choice its
//! caller makes, and a test bounds it by a named tolerance: fused multiply-adds
//! (`fast::minibatch::tests::fused_differs_by_rounding_only`) and the first layer's sums split
//! in two ranges of pixels (`fast::minibatch::tests::the_parts_are_independent_and_two_ranges_round_only`).
//!
//! Every floating-point kernel here is `#[inline(always)]`, its helpers too (functions rather than closures
//! where a closure could not be marked), for one reason: a caller may compile them into a
//! function built for wider vector instructions than the target's baseline (the host does,
//! choosing AVX2 or AVX-512 at run time), and code not inlined there stays compiled for the
//! baseline. The arithmetic does not depend on the vector width.

pub mod logits;
pub mod minibatch;
pub mod mul_add;
pub mod pairs;
pub mod sparse;
