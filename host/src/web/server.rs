//! The page's HTTP server: three files from memory, gzipped when the browser accepts it.

use std::net::SocketAddr;

use anyhow::{Result, anyhow};
use tiny_http::{Header, Method, Request, Response, StatusCode};

use super::assets::Assets;

/// A bound server (the port is taken; nothing is served until [`Server::run`]).
pub struct Server {
    http: tiny_http::Server,
    assets: Assets,
}

impl Server {
    /// Binds `address`.
    pub fn bind(address: SocketAddr, assets: Assets) -> Result<Self> {
        let http = tiny_http::Server::http(address).map_err(|e| {
            let busy = e
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::AddrInUse);
            let hint = if busy {
                "; another program uses that port: pick another with --listen 127.0.0.1:PORT \
                 (port 0: any free one)"
            } else {
                ""
            };
            anyhow!("cannot listen on {address}: {e}{hint}")
        })?;
        Ok(Server { http, assets })
    }

    /// The address served on (with the real port when bound to port 0).
    pub fn address(&self) -> SocketAddr {
        self.http
            .server_addr()
            .to_ip()
            .expect("bound to an IP address")
    }

    /// What the page is made of.
    pub fn assets(&self) -> &Assets {
        &self.assets
    }

    /// Answers requests until the process ends.
    pub fn run(self) -> Result<()> {
        for request in self.http.incoming_requests() {
            // A browser that went away mid-response is no reason to stop serving.
            let _ = respond(&self.assets, request);
        }
        Ok(())
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

fn respond(assets: &Assets, request: Request) -> std::io::Result<()> {
    let head = match request.method() {
        Method::Get => false,
        Method::Head => true,
        _ => {
            let response = Response::from_string("only GET and HEAD\n")
                .with_status_code(StatusCode(405))
                .with_header(header("Allow", "GET, HEAD"));
            return request.respond(response);
        }
    };
    let path = request.url().split(['?', '#']).next().unwrap_or("/");
    let Some(asset) = assets.get(path) else {
        let response = Response::from_string(format!("{path}: not found\n"))
            .with_status_code(StatusCode(404))
            .with_header(header("Content-Type", "text/plain; charset=utf-8"));
        return request.respond(response);
    };
    let gzip = request.headers().iter().any(|h| {
        h.field.equiv("Accept-Encoding") && h.value.as_str().split(',').any(|e| e.trim() == "gzip")
    });
    let body = if gzip { &asset.gzipped } else { &asset.plain };
    let mut response = Response::from_data(if head { Vec::new() } else { body.clone() })
        .with_header(header("Content-Type", asset.content_type))
        // The model may change between runs of `digits web` on the same port.
        .with_header(header("Cache-Control", "no-store"))
        // A Content-Length rather than chunks: the sizes are known.
        .with_chunked_threshold(usize::MAX);
    if gzip {
        response = response.with_header(header("Content-Encoding", "gzip"));
    }
    request.respond(response)
}
