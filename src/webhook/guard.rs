//! Keeps webhooks off loopback, private and link-local networks (server-side request
//! forgery): a resolver that drops such addresses, and the same test for IP literals.

use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0 // "this network", 0.0.0.0/8
                || a >= 240 // reserved, 240.0.0.0/4
                || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT, 100.64.0.0/10
                || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
                || (a == 192 && b == 0 && c == 2) // TEST-NET-1
                || (a == 198 && b == 51 && c == 100) // TEST-NET-2
                || (a == 203 && b == 0 && c == 113) // TEST-NET-3
                || (a == 192 && b == 88 && c == 99)) // 6to4 relay anycast, 192.88.99.0/24
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let segments = v6.segments();
            // Addresses that embed an IPv4 address are judged by it: mapped and compatible
            // (`to_ipv4`), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
            if let Some(v4) = v6.to_ipv4() {
                if !v6.is_loopback() && !v6.is_unspecified() {
                    return is_public(IpAddr::V4(v4));
                }
            }
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(
                    o[12], o[13], o[14], o[15],
                )));
            }
            if segments[0] == 0x2002 {
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5])));
            }
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation, 2001:db8::/32
                || (first == 0x64 && segments[1] == 0xff9b && segments[2] == 1))
            // local NAT64, 64:ff9b:1::/48
        }
    }
}

/// The webhook client's resolver: the system's (`getaddrinfo`, on a blocking thread), and with
/// `public_only` only the public addresses of a name, so a name pointed at a private address
/// cannot reach the operator's network.
#[derive(Clone)]
pub struct Resolver {
    pub public_only: bool,
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let public_only = self.public_only;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|addr| !public_only || is_public(addr.ip()))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::other(format!(
                    "{} resolves to no {}address",
                    name.as_str(),
                    if public_only { "public " } else { "" }
                )));
            }
            Ok(found.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_ranges_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "100.64.0.1",
            "0.1.2.3",
            "198.18.0.1",
            "240.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "::",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::808:808",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "2001:4860:4860::8888",
            "192.0.3.1",
            "203.0.114.1",
            "64:ff9b::808:808",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }
}
