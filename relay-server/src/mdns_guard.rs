//! Keeps libp2p-webrtc from leaking a socket per failed WebRTC-direct handshake.
//!
//! libp2p-webrtc (0.10.0-alpha) lets webrtc-rs open an mDNS socket (bound to 224.0.0.251:5353,
//! with a task and a 64 KiB buffer) for every incoming WebRTC-direct handshake, and nothing
//! closes it when the handshake fails or times out: measured, every failed handshake left one
//! UDP socket and about 70 KiB behind for good, so a STUN flood (one packet per handshake) ran a
//! relay out of file descriptors within minutes. WebRTC-direct never needs mDNS: the relay is
//! ICE-lite and learns the browser's address from its first STUN packet; and webrtc-rs goes on
//! without mDNS when its socket cannot be opened. So the relay can bind that address itself,
//! without address reuse, and every later bind of it fails: in the whole host, not only in the
//! relay (no socket option or filter limits it to one process), so a browser on the same host
//! loses its mDNS, and with it WebRTC (the test namespace showed it). Hence an operator's choice,
//! `webrtc_block_mdns`, off by default.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

/// Where webrtc-rs binds its mDNS socket on Linux.
const MDNS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353);

/// Whether per-handshake mDNS sockets can be opened in this process.
#[derive(Debug)]
pub enum MdnsGuard {
    /// This relay holds the address: no mDNS socket can be opened.
    Held {
        /// Bound for as long as the guard lives.
        _socket: UdpSocket,
    },
    /// Someone else holds it without address reuse (another relay on the host): the same.
    HeldElsewhere,
    /// The address could not be taken and sockets with address reuse can still bind it (an
    /// mDNS daemon holds it with reuse): failed handshakes leak sockets.
    Open,
}

impl MdnsGuard {
    /// Takes the address if it can, then checks that a socket with address reuse, as webrtc-rs
    /// opens it, cannot bind it.
    pub fn hold() -> MdnsGuard {
        let held = UdpSocket::bind(MDNS).ok();
        if reusable_bind_succeeds() {
            return MdnsGuard::Open;
        }
        match held {
            Some(socket) => MdnsGuard::Held { _socket: socket },
            None => MdnsGuard::HeldElsewhere,
        }
    }

    /// Whether handshakes are kept from opening mDNS sockets.
    pub fn blocks(&self) -> bool {
        !matches!(self, MdnsGuard::Open)
    }
}

/// Binds the mDNS address the way webrtc-rs does (address and port reuse); true if it worked.
fn reusable_bind_succeeds() -> bool {
    let Ok(socket) = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    ) else {
        return false;
    };
    #[cfg(unix)]
    let _ = socket.set_reuse_port(true);
    let _ = socket.set_reuse_address(true);
    socket.bind(&SocketAddr::V4(MDNS).into()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn while_held_no_reusing_socket_binds_the_mdns_address() {
        let guard = MdnsGuard::hold();
        if let MdnsGuard::Open = guard {
            // An mDNS daemon on this machine holds the address with reuse: nothing to check.
            eprintln!("224.0.0.251:5353 is held with reuse by another program");
            return;
        }
        assert!(guard.blocks());
        assert!(!reusable_bind_succeeds());
    }
}
