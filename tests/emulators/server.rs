//! The start-up every emulator shares: serve an axum app on a free port of 127.0.0.1 (tests make
//! network calls only to the loopback interface) for as long as the tokio runtime lives.
//!
//! Each emulator includes it with `#[path = "server.rs"] mod server;`, so that it works whether
//! the emulator is itself included from `tests/` or from `examples/`.

use std::net::SocketAddr;

/// Bind 127.0.0.1:0, spawn `axum::serve` on the current runtime and return the address bound.
pub async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}
