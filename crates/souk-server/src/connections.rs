//! HTTP/1 connections and the limits on a request's head (its URI and headers).
//!
//! hyper refuses a head it cannot hold by itself, with an empty body, before any router
//! sees the request: a URI longer than 64 KiB (a constant of hyper), a head larger than its
//! read buffer or with more headers than it has room for. So hyper's limits are set well
//! above Souk's ([`MAX_URI_BYTES`], [`MAX_HEADER_BYTES`], [`MAX_HEADERS`]) and Souk's are
//! enforced by [`head_limits`], in the router, with the JSON errors of the error table:
//! 414 `uri_too_long` and 431 `headers_too_large`. Only a head past hyper's own limits
//! still gets hyper's empty answer.

use std::future::Future;
use std::time::Duration;

use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::error::ApiError;

/// The longest request target (path and query) Souk reads, in bytes.
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// The most bytes of headers (names, values and their separators) in one request.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most header lines in one request.
pub const MAX_HEADERS: usize = 100;

/// hyper's read buffer: a head larger than this is refused by hyper itself (its default,
/// about 400 KiB, is raised so that every head up to hyper's 64 KiB URI limit reaches
/// [`head_limits`]). hyper grows the buffer only as far as a request needs.
const HYPER_MAX_BUFFER: usize = 1024 * 1024;
/// Header lines hyper parses before refusing the request by itself (its default is 100).
const HYPER_MAX_HEADERS: usize = 512;

/// Refuse a request whose URI or headers exceed Souk's limits, with a JSON error.
/// Cost: one pass over the header map, no allocation.
pub async fn head_limits(request: Request, next: Next) -> Response {
    let uri_bytes = uri_length(request.uri());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::new(
            "uri_too_long",
            format!("expected a URI of at most {MAX_URI_BYTES} bytes, found {uri_bytes}"),
            Some("uri".into()),
        )
        .into_response();
    }
    let headers = request.headers();
    if headers.len() > MAX_HEADERS {
        return ApiError::new(
            "headers_too_large",
            format!("expected at most {MAX_HEADERS} headers, found {}", headers.len()),
            Some("headers".into()),
        )
        .into_response();
    }
    // As on the wire: `name: value\r\n`.
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            "headers_too_large",
            format!("expected at most {MAX_HEADER_BYTES} bytes of headers, found {header_bytes}"),
            Some("headers".into()),
        )
        .into_response();
    }
    next.run(request).await
}

/// The request target's length as sent: the path and query, with the scheme and authority
/// when the client sent an absolute URI.
fn uri_length(uri: &Uri) -> usize {
    let scheme = uri.scheme_str().map_or(0, |s| s.len() + "://".len());
    let authority = uri.authority().map_or(0, |a| a.as_str().len());
    let path_and_query = uri.path_and_query().map_or(0, |p| p.as_str().len());
    scheme + authority + path_and_query
}

/// Accept connections on `listener` and serve `app` on each until `shutdown` resolves, then
/// stop accepting, let in-flight requests finish and return.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timer gives hyper its default 30 s limit on reading a request head.
    builder.max_buf_size(HYPER_MAX_BUFFER).max_headers(HYPER_MAX_HEADERS).timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors or a connection reset before it was accepted:
                    // keep serving the others (pausing a moment when the process is out of
                    // descriptors, so the loop does not spin).
                    tracing::warn!(%error, "accepting a connection failed");
                    if !is_per_connection(&error) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of one connection that went away before it was accepted (the listener is fine).
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(error.kind(), ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_length_counts_what_was_sent() {
        assert_eq!(uri_length(&"/v1/search?q=mug".parse().unwrap()), "/v1/search?q=mug".len());
        assert_eq!(uri_length(&"http://shop.example/v1/stats".parse().unwrap()), "http://shop.example/v1/stats".len());
    }

    #[test]
    fn the_error_table_states_the_limits_in_force() {
        let uri = souk_engine::error::error_code("uri_too_long").unwrap();
        assert_eq!(uri.status, 414);
        assert!(uri.description.contains(&format!("{} KiB", MAX_URI_BYTES / 1024)), "{}", uri.description);
        let headers = souk_engine::error::error_code("headers_too_large").unwrap();
        assert_eq!(headers.status, 431);
        assert!(headers.description.contains(&format!("{} KiB", MAX_HEADER_BYTES / 1024)), "{}", headers.description);
        assert!(headers.description.contains(&format!("{MAX_HEADERS} header")), "{}", headers.description);
    }
}
