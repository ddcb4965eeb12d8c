//! The exports JavaScript calls (see `web/assets/index.html`): numbers in, numbers out, and
//! byte offsets into the module's memory where JavaScript reads or writes the bytes. Every
//! call goes to the one [`Page`]; this module holds the only `unsafe` of the crate.

use core::cell::UnsafeCell;

use crate::page::{Kind, Page, Status};

struct Shared(UnsafeCell<Page>);

// SAFETY: the module runs on one thread (wasm32 without the atomics feature has no threads).
unsafe impl Sync for Shared {}

static PAGE: Shared = Shared(UnsafeCell::new(Page::new()));

/// The page, for the duration of one export call.
fn page() -> &'static mut Page {
    // SAFETY: JavaScript calls one export at a time and no export calls another, so the
    // reference made here is the only one while it lives, and it does not outlive the call
    // that made it (exports return numbers and offsets, never references).
    unsafe { &mut *PAGE.0.get() }
}

/// The offset of `bytes` in the module's memory, or 0 for none.
fn offset(bytes: Option<&mut [u8]>) -> usize {
    bytes.map_or(0, |b| b.as_mut_ptr() as usize)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // JavaScript sees a RuntimeError ("unreachable") and reports it.
    core::arch::wasm32::unreachable()
}

/// Room for a model file of `len` bytes: its offset, 0 if too large.
#[unsafe(no_mangle)]
pub extern "C" fn model_ptr(len: usize) -> usize {
    offset(page().model_buffer(len))
}

/// Loads the model file written at [`model_ptr`]: its kind (0 f32, 1 int8, 2 compact), or -1
/// if refused (the text says why).
#[unsafe(no_mangle)]
pub extern "C" fn model_load() -> i32 {
    page().load_model().map_or(-1, |k: Kind| k as i32)
}

/// Offset of the last message (UTF-8).
#[unsafe(no_mangle)]
pub extern "C" fn text_ptr() -> usize {
    page().text().as_ptr() as usize
}

/// Length in bytes of the last message.
#[unsafe(no_mangle)]
pub extern "C" fn text_len() -> usize {
    page().text().len()
}

/// Room for a `width` x `height` canvas of gray levels: its offset, 0 if too large.
#[unsafe(no_mangle)]
pub extern "C" fn canvas_ptr(width: usize, height: usize) -> usize {
    offset(page().canvas(width, height))
}

/// Preprocesses, classifies and judges the canvas: a [`Status`].
#[unsafe(no_mangle)]
pub extern "C" fn classify(width: usize, height: usize) -> i32 {
    page().classify(width, height) as i32
}

/// Offset of the 28x28 picture the network saw.
#[unsafe(no_mangle)]
pub extern "C" fn picture_ptr() -> usize {
    page().picture().as_ptr() as usize
}

/// Offset of the last logits (10 `f32`).
#[unsafe(no_mangle)]
pub extern "C" fn logits_ptr() -> usize {
    page().logits().as_ptr() as usize
}

/// Offset of the last probabilities (10 `f32`).
#[unsafe(no_mangle)]
pub extern "C" fn probs_ptr() -> usize {
    page().probs().as_ptr() as usize
}

/// The most probable digit of the last answer.
#[unsafe(no_mangle)]
pub extern "C" fn top() -> i32 {
    page().top() as i32
}

const _: () = assert!(Status::Digit as i32 == 0);
