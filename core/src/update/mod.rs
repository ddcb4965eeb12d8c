//! Putting a new model on a running device: two flash slots (A/B), a model file streamed into
//! the one that does not run, checked whole, and committed by one word; safe against a power
//! cut at any moment (`docs/update.md`).
//!
//! - [`flash`]: NOR flash as the update sees it ([`Flash`]), and [`RamFlash`] over a byte slice.
//! - [`place`]: a model file parsed as it streams in, each tensor routed to its field's place in
//!   the image the device runs in place.
//! - [`slot`]: one slot's layout and the check that it holds an intact model.
//! - [`slots`]: the two slots, which one runs, push and rollback ([`Slots`]).
//! - [`layout`]: the slot area of the 1 MiB boards laid out as the STM32F4's sectors.
//! - [`image`]: a slot's bytes for a model file, as a device would write them (the factory
//!   model of the firmware, and the tests' reference).

pub mod flash;
pub mod image;
pub mod layout;
pub mod place;
pub mod slot;
pub mod slots;

pub use flash::{Flash, FlashError, Geometry, RamFlash};
pub use place::Kind;
pub use slot::{Header, State};
pub use slots::{Active, Progress, SlotSummary, Slots, UpdateError};
