//! The client side of the worker's endpoints: `tally healthcheck` and the
//! tests' scrapes. A minimal HTTP/1.1 GET, enough for plain-text answers,
//! that never trusts the peer: bounded in time and size, and decoded as
//! bytes so a multi-byte character split across chunks cannot panic.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::MetricsAddr;

/// Longest response read: the worker's `/metrics` is a few tens of kB.
const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// `tally healthcheck`: GET `/healthz` on `addr` (an unspecified address
/// such as 0.0.0.0 means this host). `Ok` only on HTTP 200.
pub async fn healthcheck(addr: &MetricsAddr) -> Result<(), String> {
    let mut last_error = format!("{addr} resolves to no address");
    for target in addr.socket_addrs() {
        match get(*target, "/healthz").await {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => {
                return Err(format!("http://{target}/healthz answered HTTP {status}: {}", body.trim()));
            }
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// GET `path` on `addr`: the status and the body; gives up after 5 s.
pub async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut target = addr;
    if target.ip().is_unspecified() {
        target.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    let exchange = async {
        let mut stream = TcpStream::connect(target).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .map_err(|_| format!("no answer from http://{target}{path} within 5s"))?
        .map_err(|e| {
            format!("cannot reach http://{target}{path}: {e}; is `tally run` listening on TALLY_METRICS_ADDR?")
        })?;
    let not_http = || format!("http://{target}{path} answered something that is not HTTP");
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(not_http)?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).ok_or_else(not_http)?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// The body of a `Transfer-Encoding: chunked` response, as bytes (chunk
/// sizes count bytes, which may split a character); stops at the last
/// chunk or at anything malformed.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&body[..line_end]);
        let rest = &body[line_end + 2..];
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::dechunk;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"), b"hello, world");
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        // "é" is two bytes; the peer splits it between two chunks.
        let body = b"2\r\na\xc3\r\n2\r\n\xa9b\r\n0\r\n\r\n";
        assert_eq!(String::from_utf8_lossy(&dechunk(body)), "aéb");
        // Sizes that lie, or are not numbers, end the body instead of panicking.
        assert_eq!(dechunk(b"ffff\r\nshort\r\n"), b"");
        assert_eq!(dechunk(b"zz\r\nx\r\n"), b"");
        assert_eq!(dechunk(b"3\r\n\xff\xfe\xfd"), b"\xff\xfe\xfd");
    }
}
