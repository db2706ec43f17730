//! `TALLY_METRICS_ADDR`: where the endpoints listen and where `tally
//! healthcheck` looks, written `HOST:PORT` with an IP address or a host
//! name (`localhost:9755`, `[::1]:9755`, `0.0.0.0:9755`).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// A `HOST:PORT` and the addresses it resolved to when it was parsed.
#[derive(Debug, Clone)]
pub struct MetricsAddr {
    written: String,
    addrs: Vec<SocketAddr>,
}

impl MetricsAddr {
    /// Parses and resolves `text`. The error says what to write instead.
    pub fn parse(text: &str) -> Result<MetricsAddr, String> {
        let text = text.trim();
        let help = "write HOST:PORT, e.g. 127.0.0.1:9755, localhost:9755 or 0.0.0.0:9755";
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(format!("`{text}` has no port; {help}"));
        };
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("`{text}` is not HOST:PORT with a port from 0 to 65535; {help}"));
        }
        let addrs: Vec<SocketAddr> = match text.parse::<SocketAddr>() {
            Ok(addr) => vec![addr],
            Err(_) => text.to_socket_addrs().map_err(|e| format!("cannot resolve `{text}`: {e}; {help}"))?.collect(),
        };
        if addrs.is_empty() {
            return Err(format!("`{text}` resolves to no address; {help}"));
        }
        Ok(MetricsAddr { written: text.to_string(), addrs })
    }

    /// Every address the host resolved to; listening takes the first that binds.
    pub fn socket_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
}

impl From<SocketAddr> for MetricsAddr {
    fn from(addr: SocketAddr) -> Self {
        MetricsAddr { written: addr.to_string(), addrs: vec![addr] }
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsAddr;

    #[test]
    fn addresses_and_host_names_parse() {
        assert_eq!(MetricsAddr::parse("127.0.0.1:9755").unwrap().socket_addrs().len(), 1);
        let local = MetricsAddr::parse("localhost:9755").unwrap();
        assert!(local.socket_addrs().iter().all(|a| a.ip().is_loopback() && a.port() == 9755));
        assert_eq!(local.to_string(), "localhost:9755");
        assert!(MetricsAddr::parse("[::1]:9755").is_ok());
        for bad in ["localhost", "9755", ":9755", "localhost:99999", "not an address", "no-such-host.invalid:9755"] {
            let err = MetricsAddr::parse(bad).unwrap_err();
            assert!(err.contains("HOST:PORT"), "{bad}: {err}");
        }
    }
}
