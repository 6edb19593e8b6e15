//! The floor under this project's HTTP reads: a server with the node's HTTP stack (axum on
//! hyper, HTTP/1.1, one multi-threaded tokio runtime) and no node behind it. `GET /kv/{key}`
//! answers the JSON a node sends for a stored 100-byte value, `PUT /kv/{key}` answers 200, and
//! `GET /status` tells `consensus-lab load` it may start. Driven by `consensus-lab load`, it
//! shows what the client and the HTTP path alone cost on this machine (docs/performance.md,
//! "The floor: a server that does nothing, and a lighter client").
//!
//! Usage: `cargo run --release -p harness --example http_floor -- PORT` (one process per port,
//! as the cluster runs one node per process).

use axum::extract::Path;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => anyhow::bail!("usage: http_floor PORT (the port to serve on 127.0.0.1)"),
    };
    let value = "v".repeat(100);
    let router = Router::new()
        .route(
            "/kv/{*key}",
            get(move |Path(key): Path<String>| {
                let value = value.clone();
                async move { Json(json!({ "key": key, "value": value })) }
            })
            .put(|| async {}),
        )
        .route(
            "/status",
            get(|| async {
                Json(json!({ "protocol": "none (the HTTP floor)", "role": "Leader" }))
            }),
        );
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            axum::serve(listener, router).await?;
            Ok(())
        })
}
