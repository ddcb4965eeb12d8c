//! # digits-web
//!
//! The browser page's WebAssembly module: the `no_std` core preprocesses the drawing, runs the
//! network and fine-tunes it, the same code (and bits) as `digits predict` and the device.
//! `digits web` serves it with the page (`web/assets/index.html`).
//!
//! - [`page`]: what the page does, in safe Rust, tested natively.
//! - `abi` (wasm32 only): the exports JavaScript calls; plain `extern "C"` functions of
//!   numbers and byte offsets into the module's memory, so the page needs no generated glue.
//! - [`heap`]: a bump allocator, and preprocessing in scratch memory.
//! - [`text`]: the page's line of text in a fixed buffer.
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

#[cfg(target_arch = "wasm32")]
pub mod abi;
pub mod heap;
pub mod page;
pub mod text;
