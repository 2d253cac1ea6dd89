//! Runs the emulator alone: `cargo run -p astrolabe-kubesim --example sim -- 127.0.0.1:8001`.

use astrolabe_kubesim::{Sim, SimConfig, serve};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8001".into());
    let sim = Sim::new(SimConfig {
        default_namespaces: true,
        ..SimConfig::default()
    });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    serve(sim, listener, shutdown).await
}
