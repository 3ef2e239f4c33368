//! A minimal HTTP/1.1 responder for `/metrics`: one request per connection,
//! bounded in size and time, so that a slow or hostile client costs little.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

use super::prometheus::{Exporter, Format};

/// Longest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// A connection is dropped after this long, answered or not.
const DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[error("cannot serve Prometheus metrics on {addr}: {source}")]
pub struct ListenError {
    pub addr: SocketAddr,
    pub source: io::Error,
}

/// Binds `addr` now, so that a busy or forbidden address is reported before
/// tracing starts. Must be called within a tokio runtime.
pub fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    let err = |source| ListenError { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(err)?;
    listener.set_nonblocking(true).map_err(err)?;
    TcpListener::from_std(listener).map_err(err)
}

/// Answers requests until the task is dropped.
pub async fn serve(listener: TcpListener, exporter: Arc<Exporter>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let exporter = exporter.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(DEADLINE, answer(stream, &exporter)).await;
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                log::warn!("prometheus endpoint: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, exporter: &Exporter) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() > MAX_HEAD {
            return respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                "text/plain",
                b"",
                false,
            )
            .await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut lines = head.lines();
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head_only = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let accept = lines.find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("accept").then(|| value.trim())
            });
            let format = Format::for_accept(accept);
            let body = exporter.render(format);
            respond(
                &mut stream,
                200,
                "OK",
                format.content_type(),
                body.as_bytes(),
                head_only,
            )
            .await
        }
        ("GET" | "HEAD", "/") => {
            let body = b"tracer: metrics are at /metrics\n";
            respond(&mut stream, 200, "OK", "text/plain; charset=utf-8", body, head_only).await
        }
        (_, "/" | "/metrics") => {
            respond(
                &mut stream,
                405,
                "Method Not Allowed",
                "text/plain",
                b"GET or HEAD\n",
                false,
            )
            .await
        }
        _ => {
            respond(
                &mut stream,
                404,
                "Not Found",
                "text/plain",
                b"try /metrics\n",
                head_only,
            )
            .await
        }
    }
}

async fn respond(
    stream: &mut TcpStream,
    code: u16,
    reason: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let allow = if code == 405 { "Allow: GET, HEAD\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(request).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn answers_metrics_and_refuses_the_rest() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(async { bind("127.0.0.1:0".parse().unwrap()).unwrap() });
        let addr = listener.local_addr().unwrap();
        // A second listener on the same address fails with a clear message.
        let busy = rt.block_on(async { bind(addr).unwrap_err() });
        assert!(
            busy.to_string()
                .starts_with(&format!("cannot serve Prometheus metrics on {addr}: ")),
            "{busy}"
        );
        let exporter = Arc::new(Exporter::new(Vec::new()));
        let server = rt.spawn(serve(listener, exporter));
        let client = std::thread::spawn(move || {
            (
                get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
                get(
                    addr,
                    b"GET /metrics HTTP/1.1\r\naccept: application/openmetrics-text\r\n\r\n",
                ),
                get(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n"),
                get(addr, b"POST /metrics HTTP/1.1\r\n\r\n"),
                get(addr, b"GET /nope HTTP/1.1\r\n\r\n"),
                get(addr, &[b'A'; 8200]),
            )
        });
        let (ok, open, head, post, missing, huge) = rt.block_on(async {
            loop {
                if client.is_finished() {
                    break client.join().unwrap();
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        server.abort();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{ok}"
        );
        assert!(ok.ends_with("Connection: close\r\n\r\n"), "nothing published yet: {ok}");
        assert!(open.contains("Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
        assert!(open.ends_with("\r\n\r\n# EOF\n"), "{open}");
        assert!(
            head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
        assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
        assert!(huge.starts_with("HTTP/1.1 431 "), "{huge}");
    }
}
