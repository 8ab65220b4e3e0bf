//! HTTP/1.1 on a local socket, turned into `ApiRequest`s for the handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wxauth::api::{ApiRequest, ApiResponse, Handler, MAX_BODY_BYTES, log_request};
use wxauth::deadline::Deadline;
use wxauth::error::ApiError;

/// Read at most this much of a body; more is a 413 without reading the rest.
const READ_LIMIT: usize = MAX_BODY_BYTES + 1;

pub async fn serve(listener: TcpListener, handler: Arc<impl Handler>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handler = Arc::clone(&handler);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(answer(&*handler, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(handler: &impl Handler, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts.uri.path().to_owned();
    let response = match Limited::new(body, READ_LIMIT).collect().await {
        Err(_) => ApiError::PayloadTooLarge.into_response(),
        Ok(body) => {
            let mut request = ApiRequest::new(&method, &path, Deadline::for_request(None))
                .with_body(body.to_bytes().to_vec());
            request.query = parts.uri.query().map(str::to_owned);
            for (name, value) in &parts.headers {
                if let Ok(value) = value.to_str() {
                    request = request.with_header(name.as_str(), value);
                }
            }
            handler.handle(request).await
        }
    };
    log_request(&method, &path, &response, started);
    to_hyper(response)
}

fn to_hyper(response: ApiResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(response.body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}
