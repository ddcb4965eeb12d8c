//! `digits web`: the page where a person draws a digit, sees what the network sees and teaches
//! it their handwriting. The page runs the core in WebAssembly (`web/`, built into this binary
//! by `build.rs`); this module serves it with the model.
//!
//! - [`assets`]: the page, the module and the model, each gzipped once at startup.
//! - [`server`]: the HTTP server on a loopback (or any) address.

pub mod assets;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use crate::model_io;
use assets::Assets;

/// Options of `digits web`.
#[derive(Args)]
pub struct WebArgs {
    /// Address to serve on (port 0: any free port, printed).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The model the page runs: an f32 or int8 784-128-10 model, or a compact one. Default: the
    /// int8 model built into digits (99.12% on MNIST).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
}

/// Runs `digits web` until interrupted.
pub fn run(args: WebArgs) -> Result<()> {
    let (model, name, compact) = match &args.model {
        Some(path) => {
            // The same checks (and messages) as `eval` and `predict`, before any port is opened.
            let loaded = model_io::load_weights(path)?;
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read model file {}", path.display()))?;
            let compact = matches!(loaded.weights, model_io::Weights::Compact(_));
            (bytes, path.display().to_string(), compact)
        }
        None => (
            assets::BUILT_IN_MODEL.to_vec(),
            "the built-in int8 model".to_string(),
            false,
        ),
    };
    let assets = Assets::new(model, compact)?;
    let server = server::Server::bind(args.listen, assets)?;
    println!("serving http://{}/", server.address());
    println!(
        "model: {name}; the page transfers {} gzipped ({} plain). Ctrl-C stops.",
        kib(server.assets().transfer(true)),
        kib(server.assets().transfer(false)),
    );
    server.run()
}

fn kib(bytes: usize) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}
