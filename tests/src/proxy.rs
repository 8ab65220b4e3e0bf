//! A counting TCP proxy in front of a stand-in: how many connections a function
//! opens and which API operations it calls (read from the `X-Amz-Target` header
//! in the byte stream; both DynamoDB and Secrets Manager use it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub connections: u64,
    /// Operation name (e.g. `GetItem`, `GetSecretValue`) → calls.
    pub operations: HashMap<String, u64>,
}

impl Counts {
    pub fn op(&self, name: &str) -> u64 {
        self.operations.get(name).copied().unwrap_or(0)
    }
}

#[derive(Clone)]
pub struct CountingProxy {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    counts: Arc<Mutex<Counts>>,
    /// While true the upstream is "stopped": new connections are closed at
    /// once and open ones are cut.
    down: tokio::sync::watch::Sender<bool>,
}

impl CountingProxy {
    /// Forwards every connection to `upstream` (an `http://host:port` endpoint).
    pub async fn start(upstream: &str) -> Self {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), upstream).await
    }

    /// As `start`, listening on `address` (for clients in another network
    /// namespace, such as a Docker container on the bridge).
    pub async fn start_on(address: std::net::IpAddr, upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind((address, 0)).await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = Arc::clone(&counts);
        let (down, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *watch.borrow() {
                    drop(client);
                    continue;
                }
                shared.lock().expect("counts").connections += 1;
                let upstream = upstream.clone();
                let counts = Arc::clone(&shared);
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        tokio::select! {
                            () = pipe(client, server, counts) => {}
                            _ = watch.wait_for(|down| *down) => {}
                        }
                    }
                });
            }
        });
        Self {
            endpoint,
            counts,
            down,
        }
    }

    /// Stops (true) or restarts (false) the upstream as clients see it.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().expect("counts").clone()
    }
}

async fn pipe(client: TcpStream, server: TcpStream, counts: Arc<Mutex<Counts>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes after the last newline: a header line can straddle two reads.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                if let Some(op) = amz_target(&line) {
                    *counts
                        .lock()
                        .expect("counts")
                        .operations
                        .entry(op)
                        .or_default() += 1;
                }
            }
            if pending.len() > 4096 {
                // A long body without newlines: no header can start inside it.
                let keep = pending.len() - 256;
                pending.drain(..keep);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let downstream = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(upstream, downstream);
}

/// `X-Amz-Target: DynamoDB_20120810.GetItem` → `GetItem`.
fn amz_target(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let (name, value) = line.split_once(':')?;
    if !name.trim().eq_ignore_ascii_case("x-amz-target") {
        return None;
    }
    value.trim().rsplit('.').next().map(str::to_owned)
}

/// An HTTP proxy in front of DynamoDB that plays its faults: it answers the
/// next `n` requests with DynamoDB's throttling error instead of forwarding
/// them, cancels the next `n` transactions as DynamoDB does when one of their
/// items is throttled, or forwards an operation's requests (so they take
/// effect) and holds their answers back, as a slow or lossy network does.
/// Counts every request by operation and keeps their bodies.
#[derive(Clone)]
pub struct DynamoDbProxy {
    pub endpoint: String,
    throttle_next: Arc<std::sync::atomic::AtomicU64>,
    throttled: Arc<std::sync::atomic::AtomicU64>,
    cancel_next: Arc<std::sync::atomic::AtomicU64>,
    operations: Arc<Mutex<HashMap<String, u64>>>,
    bodies: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    delayed: Arc<Mutex<Option<(String, std::time::Duration)>>>,
}

impl DynamoDbProxy {
    pub async fn start(upstream: &str) -> Self {
        use http_body_util::Full;
        use hyper_util::client::legacy::Client;
        use hyper_util::rt::TokioExecutor;
        use std::sync::atomic::{AtomicU64, Ordering};

        let upstream = upstream.trim_end_matches('/').to_owned();
        let throttle_next = Arc::new(AtomicU64::new(0));
        let throttled = Arc::new(AtomicU64::new(0));
        let cancel_next = Arc::new(AtomicU64::new(0));
        let operations = Arc::new(Mutex::new(HashMap::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let delayed = Arc::new(Mutex::new(None::<(String, std::time::Duration)>));
        let client: Client<_, Full<bytes::Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let (next, count) = (Arc::clone(&throttle_next), Arc::clone(&throttled));
        let (cancel, ops) = (Arc::clone(&cancel_next), Arc::clone(&operations));
        let (seen, held) = (Arc::clone(&bodies), Arc::clone(&delayed));
        let addr = crate::server::serve(move |request: crate::server::Received| {
            let (client, upstream, next, count) =
                (client.clone(), upstream.clone(), Arc::clone(&next), Arc::clone(&count));
            let (cancel, ops) = (Arc::clone(&cancel), Arc::clone(&ops));
            let (seen, held) = (Arc::clone(&seen), Arc::clone(&held));
            async move {
                let operation = request
                    .headers
                    .get("x-amz-target")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.rsplit('.').next())
                    .unwrap_or_default()
                    .to_owned();
                *ops.lock().expect("operations").entry(operation.clone()).or_insert(0) += 1;
                seen.lock().expect("bodies").push((
                    operation.clone(),
                    serde_json::from_slice(&request.body).unwrap_or_default(),
                ));
                let hold = held
                    .lock()
                    .expect("delay")
                    .clone()
                    .filter(|(op, _)| *op == operation)
                    .map(|(_, delay)| delay);
                if operation == "TransactWriteItems"
                    && cancel
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok()
                {
                    return crate::server::respond(
                        400,
                        "application/x-amz-json-1.0",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity of your table or index."}]}"#,
                    );
                }
                let take = next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if take {
                    count.fetch_add(1, Ordering::SeqCst);
                    return crate::server::respond(
                        400,
                        "application/x-amz-json-1.0",
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
                    );
                }
                let mut forward = hyper::Request::builder()
                    .method(request.method.as_str())
                    .uri(format!("{upstream}{}", request.path));
                for (name, value) in &request.headers {
                    forward = forward.header(name, value);
                }
                let forward = forward.body(Full::new(request.body)).expect("request");
                let answer = match client.request(forward).await {
                    Ok(response) => {
                        use http_body_util::BodyExt;
                        let (parts, body) = response.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        hyper::Response::from_parts(parts, Full::new(body))
                    }
                    Err(_) => crate::server::respond(502, "text/plain", "upstream failed"),
                };
                if let Some(delay) = hold {
                    // Applied upstream already; only the answer is late.
                    tokio::time::sleep(delay).await;
                }
                answer
            }
        })
        .await;
        Self {
            endpoint: format!("http://{addr}"),
            throttle_next,
            throttled,
            cancel_next,
            operations,
            bodies,
            delayed,
        }
    }

    /// From now on, `operation`'s requests reach DynamoDB (and take effect) at
    /// once, but their answers come back only `delay` later.
    pub fn delay_answers(&self, operation: &str, delay: std::time::Duration) {
        *self.delayed.lock().expect("delay") = Some((operation.to_owned(), delay));
    }

    /// The JSON bodies of the `operation` requests seen so far.
    pub fn bodies(&self, operation: &str) -> Vec<serde_json::Value> {
        self.bodies
            .lock()
            .expect("bodies")
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// The next `n` TransactWriteItems are cancelled with a ThrottlingError reason.
    pub fn cancel_transactions_next(&self, n: u64) {
        self.cancel_next
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Requests seen for `operation` (e.g. `GetItem`), forwarded or not.
    pub fn calls(&self, operation: &str) -> u64 {
        self.operations
            .lock()
            .expect("operations")
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    /// The next `n` requests get a ThrottlingException.
    pub fn throttle_next(&self, n: u64) {
        self.throttle_next
            .store(n, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn throttled(&self) -> u64 {
        self.throttled.load(std::sync::atomic::Ordering::SeqCst)
    }
}
