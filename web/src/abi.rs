//! The exports JavaScript calls (see `web/assets/index.html`): numbers in, numbers out, and
//! byte offsets into the module's memory where JavaScript reads or writes the bytes. Every
//! call goes to the one [`Page`]; this module holds the only `unsafe` of the crate.

use core::cell::UnsafeCell;

use digits_core::finetune::Gradient;

use crate::page::{Kind, Page};

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

/// Preprocesses, classifies and judges the canvas: a [`crate::page::Status`].
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

/// Adds the last drawing as a sample of `label`: the samples held, or -1 (the text says why).
#[unsafe(no_mangle)]
pub extern "C" fn teach_add(label: u32) -> i32 {
    page().teach_add(label).map_or(-1, |n| n as i32)
}

/// Samples held.
#[unsafe(no_mangle)]
pub extern "C" fn teach_count() -> i32 {
    page().samples().len() as i32
}

/// Drops the last sample: the samples left.
#[unsafe(no_mangle)]
pub extern "C" fn teach_undo() -> i32 {
    page().teach_undo() as i32
}

/// Drops every sample.
#[unsafe(no_mangle)]
pub extern "C" fn teach_clear() {
    page().teach_clear();
}

/// Teaches the samples by backprop (`numeric` 0) or central differences (1): 0, or -1 (the
/// text says why).
#[unsafe(no_mangle)]
pub extern "C" fn teach_run(numeric: u32) -> i32 {
    let method = if numeric == 0 {
        Gradient::Backprop
    } else {
        Gradient::Numeric
    };
    page().teach(method).map_or(-1, |_| 0)
}

/// Accuracy on the samples before the last teaching, 0 to 1 (-1 if none).
#[unsafe(no_mangle)]
pub extern "C" fn teach_before() -> f32 {
    page()
        .taught()
        .map_or(-1.0, |s| s.before.correct as f32 / s.before.total as f32)
}

/// Accuracy on the samples after the last teaching, 0 to 1 (-1 if none).
#[unsafe(no_mangle)]
pub extern "C" fn teach_after() -> f32 {
    page()
        .taught()
        .map_or(-1.0, |s| s.after.correct as f32 / s.after.total as f32)
}

/// Back to the loaded model.
#[unsafe(no_mangle)]
pub extern "C" fn teach_reset() {
    page().teach_reset();
}

/// Writes the model in use as a model file: its length (bytes at [`file_ptr`]), or -1.
#[unsafe(no_mangle)]
pub extern "C" fn tuned_file() -> i32 {
    page().tuned_file().map_or(-1, |bytes| bytes.len() as i32)
}

/// Offset of the bytes written by [`tuned_file`].
#[unsafe(no_mangle)]
pub extern "C" fn file_ptr() -> usize {
    page().written().as_ptr() as usize
}
