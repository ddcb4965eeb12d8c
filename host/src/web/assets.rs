//! What the page is made of, in memory: the HTML (with its CSS and JavaScript), the core as
//! WebAssembly, and the model file. Each is gzipped once, for browsers that accept it.

use std::io::Write;

use anyhow::{Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

/// The page: one file, its style and script inline (nothing from elsewhere).
pub const INDEX_HTML: &str = include_str!("../../../web/assets/index.html");

/// The core compiled to WebAssembly (see `host/build.rs`), for every model; empty when built
/// without the `wasm32-unknown-unknown` target.
pub const WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits.wasm"));

/// The same for compact models only (no 784-128-10 models, no teaching): a smaller page.
pub const WASM_COMPACT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/digits-compact.wasm"));

/// The model `digits web` serves unless given one: the shipped int8 784-128-10 model.
pub const BUILT_IN_MODEL: &[u8] = include_bytes!("../../../firmware/models/mnist-int8.digits");

/// One file of the page.
pub struct Asset {
    /// Path the page requests it by.
    pub path: &'static str,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The bytes.
    pub plain: Vec<u8>,
    /// The bytes, gzipped.
    pub gzipped: Vec<u8>,
}

/// Everything the page loads.
pub struct Assets {
    /// `/`, `/digits.wasm` and `/model.digits`.
    pub files: Vec<Asset>,
}

impl Assets {
    /// The page with `model` (a model file's bytes, already checked; `compact` if it holds a
    /// compact network).
    pub fn new(model: Vec<u8>, compact: bool) -> Result<Self> {
        let wasm = if compact { WASM_COMPACT } else { WASM };
        if wasm.is_empty() {
            bail!(
                "this digits was built without the page's WebAssembly module: run \
                 `rustup target add wasm32-unknown-unknown`, then build digits again"
            );
        }
        let files = [
            (
                "/",
                "text/html; charset=utf-8",
                INDEX_HTML.as_bytes().to_vec(),
            ),
            ("/digits.wasm", "application/wasm", wasm.to_vec()),
            ("/model.digits", "application/octet-stream", model),
        ]
        .into_iter()
        .map(|(path, content_type, plain)| Asset {
            path,
            content_type,
            gzipped: gzip(&plain),
            plain,
        })
        .collect();
        Ok(Assets { files })
    }

    /// The file served at `path`.
    pub fn get(&self, path: &str) -> Option<&Asset> {
        let path = if path == "/index.html" { "/" } else { path };
        self.files.iter().find(|a| a.path == path)
    }

    /// Bytes of the whole page, gzipped or not (the body of every response, without headers).
    pub fn transfer(&self, gzipped: bool) -> usize {
        self.files
            .iter()
            .map(|a| {
                if gzipped {
                    a.gzipped.len()
                } else {
                    a.plain.len()
                }
            })
            .sum()
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}
