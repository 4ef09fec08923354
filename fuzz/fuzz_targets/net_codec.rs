//! darkswap-proto's `FrameCodec` (every request-response protocol): reading one capped frame from a
//! stream, driven by `futures::executor::block_on` over a reader that hands out the input in
//! pieces of a fuzzed size (and says "not ready" between them).
//!
//! Input: `selector u8 | piece size u8 | stream bytes`. The selector picks the codec
//! (book sync, trade, auth, directory or direct messages) and whether a request or a response is
//! read.
//!
//! Asserts: a stream longer than the frame cap is refused; a frame read is exactly what the
//! message decoder gives for the whole stream (however it arrives); and writing it with the same
//! codec then reading that back gives the same message.
#![no_main]

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use darkswap_fuzz::Input;
use darkswap_net::libp2p::request_response::Codec;
use darkswap_net::libp2p::StreamProtocol;
use darkswap_proto::codecs::{AuthCodec, BookSyncCodec, DirectoryCodec, MessageCodec, TradeCodec};
use darkswap_proto::frame::Frame;
use futures::executor::block_on;
use futures::io::{AsyncRead, Cursor};
use libfuzzer_sys::fuzz_target;

/// Hands out at most `piece` bytes per read, with a "not ready" before every read.
struct Trickle<'a> {
    data: &'a [u8],
    piece: usize,
    ready: bool,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let n = self.piece.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(n))
    }
}

/// Reads a request or a response with codec `C` (whatever message types it carries).
fn check<C>(response: bool, piece: usize, stream: &[u8])
where
    C: Codec<Protocol = StreamProtocol> + Default,
    C::Request: Frame + Clone + PartialEq + std::fmt::Debug,
    C::Response: Frame + Clone + PartialEq + std::fmt::Debug,
{
    let protocol = StreamProtocol::new("/darkswap/fuzz/1");
    let mut codec = C::default();
    let mut io = Trickle {
        data: stream,
        piece,
        ready: false,
    };
    if response {
        let read = block_on(codec.read_response(&protocol, &mut io));
        check_read(&read, stream);
        if let Ok(message) = read {
            let mut out = Cursor::new(Vec::new());
            block_on(codec.write_response(&protocol, &mut out, message.clone())).unwrap();
            let mut back = Cursor::new(out.into_inner());
            assert_eq!(
                block_on(codec.read_response(&protocol, &mut back)).unwrap(),
                message
            );
        }
    } else {
        let read = block_on(codec.read_request(&protocol, &mut io));
        check_read(&read, stream);
        if let Ok(message) = read {
            let mut out = Cursor::new(Vec::new());
            block_on(codec.write_request(&protocol, &mut out, message.clone())).unwrap();
            let mut back = Cursor::new(out.into_inner());
            assert_eq!(
                block_on(codec.read_request(&protocol, &mut back)).unwrap(),
                message
            );
        }
    }
}

fn check_read<F: Frame + PartialEq + std::fmt::Debug>(read: &io::Result<F>, stream: &[u8]) {
    if stream.len() as u64 > F::MAX_BYTES {
        assert!(read.is_err(), "a stream over the cap was read");
        return;
    }
    match (read, F::from_bytes(stream)) {
        (Ok(a), Ok(b)) => assert_eq!(a, &b),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("codec and decoder disagree: {a:?} vs {b:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let selector = input.u8();
    let piece = usize::from(input.u8()).max(1);
    let stream = input.rest();
    let response = selector & 1 != 0;
    match (selector >> 1) % 5 {
        0 => check::<BookSyncCodec>(response, piece, stream),
        1 => check::<TradeCodec>(response, piece, stream),
        2 => check::<AuthCodec>(response, piece, stream),
        3 => check::<DirectoryCodec>(response, piece, stream),
        _ => check::<MessageCodec>(response, piece, stream),
    }
});
