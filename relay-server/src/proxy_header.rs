//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that a TLS-terminating proxy in
//! front of the WebSocket port puts before the bytes it forwards, naming the client it accepted
//! the connection from. Sans-IO: [`parse`] looks at the bytes read so far and says how many it
//! needs in all before it can go on, never more than the header holds, so the reader takes the
//! header off the stream and leaves the client's first bytes in it.
//!
//! Strict, as a security check should be: anything that is not a well-formed header of a TCP
//! connection (or of the proxy's own, `UNKNOWN` / `LOCAL`) is an error, never a guess.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 1 headers are at most 107 bytes, CRLF included (the spec's own bound).
pub const V1_MAX_BYTES: usize = 107;

/// Version 2: the 16-byte fixed part and at most this much after it. Addresses take at most 216
/// bytes (two UNIX paths); the rest is room for TLVs, which are read past and ignored.
pub const V2_MAX_AFTER_FIXED: usize = 1024;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V2_FIXED: usize = 16;

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Its length in bytes: the client's own bytes start right after it.
    pub len: usize,
    /// The client the proxy accepted the connection from; `None` when the proxy speaks for itself
    /// (v1 `UNKNOWN`, v2 `LOCAL`, or a v2 address family with no IP, such as a UNIX socket).
    pub source: Option<SocketAddr>,
}

/// What the bytes read so far come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Not yet a whole header: read until there are this many bytes in all, then ask again.
    Need(usize),
    /// A whole header.
    Done(Header),
}

/// Why the bytes are not a header we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// Neither signature: the peer did not start with a PROXY header.
    #[error("no PROXY protocol signature")]
    NoSignature,
    /// A version 1 header with no CRLF within 107 bytes.
    #[error("PROXY v1 header longer than 107 bytes")]
    V1TooLong,
    /// A version 1 header that does not read `PROXY TCP4|TCP6 src dst sport dport` or
    /// `PROXY UNKNOWN…`.
    #[error("malformed PROXY v1 header")]
    V1Syntax,
    /// A version 2 header with another version than 2 or a command other than LOCAL or PROXY.
    #[error("PROXY v2 header of an unknown version or command")]
    V2VersionOrCommand,
    /// A version 2 header longer than [`V2_MAX_AFTER_FIXED`] after its fixed part.
    #[error("PROXY v2 header longer than the cap")]
    V2TooLong,
    /// A version 2 address block shorter than its family needs.
    #[error("PROXY v2 address block too short for its family")]
    V2AddressLength,
    /// A version 2 header naming a datagram (UDP) source, or an unknown family: not the TCP
    /// connection in front of us.
    #[error("PROXY v2 header of an unsupported address family or protocol")]
    V2Family,
}

impl HeaderError {
    /// The metrics label.
    pub fn label(self) -> &'static str {
        match self {
            HeaderError::NoSignature => "no_signature",
            HeaderError::V1TooLong | HeaderError::V2TooLong => "too_long",
            HeaderError::V1Syntax
            | HeaderError::V2VersionOrCommand
            | HeaderError::V2AddressLength
            | HeaderError::V2Family => "malformed",
        }
    }
}

/// Looks at the first bytes of a connection. Call with what has been read; on
/// `Ok(Progress::Need(n))` read until there are `n` bytes (it is always more than `buf.len()`)
/// and call again.
pub fn parse(buf: &[u8]) -> Result<Progress, HeaderError> {
    let start = buf.len().min(V1_PREFIX.len());
    let v1 = buf[..start] == V1_PREFIX[..start];
    let v2 = buf[..start] == V2_SIGNATURE[..start];
    if !v1 && !v2 {
        return Err(HeaderError::NoSignature);
    }
    if buf.len() < V1_PREFIX.len() {
        return Ok(Progress::Need(V1_PREFIX.len()));
    }
    if v1 {
        parse_v1(buf)
    } else {
        parse_v2(buf)
    }
}

fn parse_v1(buf: &[u8]) -> Result<Progress, HeaderError> {
    if !buf.ends_with(b"\r\n") {
        if buf.len() >= V1_MAX_BYTES {
            return Err(HeaderError::V1TooLong);
        }
        // A CR anywhere but just before the end, or an LF at all, is not a header.
        if buf[..buf.len() - 1].contains(&b'\r') || buf.contains(&b'\n') {
            return Err(HeaderError::V1Syntax);
        }
        return Ok(Progress::Need(buf.len() + 1));
    }
    let line = std::str::from_utf8(&buf[V1_PREFIX.len()..buf.len() - 2])
        .map_err(|_| HeaderError::V1Syntax)?;
    let fields: Vec<&str> = line.split(' ').collect();
    let source = match fields.as_slice() {
        ["UNKNOWN", ..] => None,
        ["TCP4", src, dst, sport, dport] => {
            let src: Ipv4Addr = src.parse().map_err(|_| HeaderError::V1Syntax)?;
            dst.parse::<Ipv4Addr>().map_err(|_| HeaderError::V1Syntax)?;
            port(dport)?;
            Some(SocketAddr::new(IpAddr::V4(src), port(sport)?))
        }
        ["TCP6", src, dst, sport, dport] => {
            let src: Ipv6Addr = src.parse().map_err(|_| HeaderError::V1Syntax)?;
            dst.parse::<Ipv6Addr>().map_err(|_| HeaderError::V1Syntax)?;
            port(dport)?;
            Some(SocketAddr::new(IpAddr::V6(src), port(sport)?))
        }
        _ => return Err(HeaderError::V1Syntax),
    };
    Ok(Progress::Done(Header {
        len: buf.len(),
        source,
    }))
}

/// A v1 port: 1 to 5 decimal digits, no sign, no leading zero (but "0" itself), at most 65535.
fn port(text: &str) -> Result<u16, HeaderError> {
    let digits = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    if !digits || (text.len() > 1 && text.starts_with('0')) {
        return Err(HeaderError::V1Syntax);
    }
    text.parse().map_err(|_| HeaderError::V1Syntax)
}

fn parse_v2(buf: &[u8]) -> Result<Progress, HeaderError> {
    if buf.len() < V2_FIXED {
        let sig = buf.len().min(V2_SIGNATURE.len());
        if buf[..sig] != V2_SIGNATURE[..sig] {
            return Err(HeaderError::NoSignature);
        }
        return Ok(Progress::Need(V2_FIXED));
    }
    if buf[..12] != V2_SIGNATURE {
        return Err(HeaderError::NoSignature);
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(HeaderError::V2VersionOrCommand);
    }
    let after = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if after > V2_MAX_AFTER_FIXED {
        return Err(HeaderError::V2TooLong);
    }
    let len = V2_FIXED + after;
    if buf.len() < len {
        return Ok(Progress::Need(len));
    }
    let block = &buf[V2_FIXED..len];
    let local = command == 0;
    let source = match buf[13] {
        // AF_UNSPEC: the proxy's own connection (health checks), whatever the command.
        0x00 => None,
        // TCP over IPv4: src, dst (4 bytes each), src port, dst port.
        0x11 => {
            let a = block.get(..12).ok_or(HeaderError::V2AddressLength)?;
            let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([a[8], a[9]])))
        }
        // TCP over IPv6: src, dst (16 bytes each), src port, dst port.
        0x21 => {
            let a = block.get(..36).ok_or(HeaderError::V2AddressLength)?;
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&a[..16]);
            let ip = Ipv6Addr::from(octets);
            Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([a[32], a[33]]),
            ))
        }
        // Stream over a UNIX socket: two 108-byte paths, no IP to name.
        0x31 => {
            block.get(..216).ok_or(HeaderError::V2AddressLength)?;
            None
        }
        _ if local => None,
        _ => return Err(HeaderError::V2Family),
    };
    Ok(Progress::Done(Header {
        len,
        source: if local { None } else { source },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` as a reader would: only as many as `parse` asks for at each step.
    fn read(bytes: &[u8]) -> Result<Header, HeaderError> {
        let mut have = 0;
        loop {
            match parse(&bytes[..have])? {
                Progress::Done(h) => return Ok(h),
                Progress::Need(n) => {
                    assert!(n > have, "asks for more than it has");
                    assert!(n <= bytes.len(), "reads past the header: wants {n}");
                    have = n;
                }
            }
        }
    }

    fn sock(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    /// The spec's v1 examples (section 2.1), with the client's first bytes after them untouched.
    #[test]
    fn v1_examples_from_the_spec() {
        let tcp4 = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n";
        let h = read(tcp4).unwrap();
        assert_eq!(h.source, sock("192.168.0.1:56324"));
        assert_eq!(&tcp4[h.len..], b"GET / HTTP/1.1\r\n");
        let tcp6 = b"PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(read(tcp6), Err(HeaderError::V1Syntax));
        let tcp6 = b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 443\r\n";
        assert_eq!(read(tcp6).unwrap().source, sock("[2001:db8::1]:65535"));
        let unknown = b"PROXY UNKNOWN\r\n";
        assert_eq!(
            read(unknown).unwrap(),
            Header {
                len: 15,
                source: None
            }
        );
        // The spec's worst case: UNKNOWN followed by the longest TCP6 fields, 107 bytes.
        let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        assert_eq!(longest.len(), V1_MAX_BYTES);
        assert_eq!(read(longest).unwrap().len, V1_MAX_BYTES);
    }

    #[test]
    fn v1_refuses_what_is_not_a_header() {
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n"[..],
            b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 2001:db8::1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP6 192.168.0.1 2001:db8::2 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 +5632 443\r\n",
            b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",
            b"PROXY TCP4 192.168.0.1\r192.168.0.11 56324 443\r\n",
        ] {
            assert_eq!(read(bad), Err(HeaderError::V1Syntax), "{bad:?}");
        }
        let endless = [b"PROXY ".as_slice(), &[b'A'; 200]].concat();
        assert_eq!(read(&endless), Err(HeaderError::V1TooLong));
    }

    #[test]
    fn anything_else_is_refused_at_the_first_wrong_byte() {
        assert_eq!(parse(b"G"), Err(HeaderError::NoSignature));
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(HeaderError::NoSignature));
        assert_eq!(parse(b"PROXX"), Err(HeaderError::NoSignature));
        assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(HeaderError::NoSignature));
        assert_eq!(parse(b""), Ok(Progress::Need(6)));
        assert_eq!(parse(b"PRO"), Ok(Progress::Need(6)));
    }

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(block.len() as u16).to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    /// A v2 header as HAProxy's `send-proxy-v2` writes it for an IPv4 client, with a TLV after
    /// the addresses (PP2_TYPE_ALPN "h2") that is read past.
    #[test]
    fn v2_tcp4_and_tcp6_with_tlvs() {
        let mut block = vec![192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb];
        block.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']);
        let mut bytes = v2(1, 0x11, &block);
        bytes.extend_from_slice(b"client bytes");
        let h = read(&bytes).unwrap();
        assert_eq!(h.source, sock("192.168.0.1:56324"));
        assert_eq!(&bytes[h.len..], b"client bytes");

        let mut block = vec![0u8; 36];
        block[..16].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        block[32..34].copy_from_slice(&443u16.to_be_bytes());
        assert_eq!(
            read(&v2(1, 0x21, &block)).unwrap().source,
            sock("[2001:db8::1]:443")
        );
    }

    #[test]
    fn v2_local_unspec_and_unix_name_no_client() {
        let block = [10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 80];
        assert_eq!(read(&v2(0, 0x11, &block)).unwrap().source, None);
        assert_eq!(read(&v2(1, 0x00, &[])).unwrap().source, None);
        assert_eq!(read(&v2(1, 0x31, &[0; 216])).unwrap().source, None);
    }

    #[test]
    fn v2_refuses_what_it_cannot_vouch_for() {
        let block = [10, 0, 0, 1, 10, 0, 0, 2, 0, 80, 0, 80];
        assert_eq!(
            read(&v2(1, 0x12, &block)),
            Err(HeaderError::V2Family),
            "UDP"
        );
        assert_eq!(
            read(&v2(1, 0x11, &block[..11])),
            Err(HeaderError::V2AddressLength)
        );
        assert_eq!(
            read(&v2(2, 0x11, &block)),
            Err(HeaderError::V2VersionOrCommand)
        );
        let mut v1_version = v2(1, 0x11, &block);
        v1_version[12] = 0x11;
        assert_eq!(read(&v1_version), Err(HeaderError::V2VersionOrCommand));
        let mut huge = v2(1, 0x11, &block);
        huge[14..16].copy_from_slice(&(V2_MAX_AFTER_FIXED as u16 + 1).to_be_bytes());
        assert_eq!(parse(&huge[..16]), Err(HeaderError::V2TooLong));
    }
}
