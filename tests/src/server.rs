//! The loopback HTTP server the WeChat simulator runs on, for the harness's
//! other fakes (the Lambda Runtime API emulator, the DynamoDB proxies).

use std::future::Future;
use std::net::SocketAddr;

pub use wechat_sim::server::{HttpResponse, Received, query_pairs, respond};

/// Serves `handler` on a free loopback port until the test's runtime ends.
pub async fn serve<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(Received) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    wechat_sim::server::serve_counting(handler)
        .await
        .expect("bind loopback")
        .0
}
