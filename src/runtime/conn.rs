//! One client connection as a worker holds it: socket, pooled buffers, protocol core,
//! generation, readiness kept in user space, byte counters and stage timestamps.

use super::buffers::Buf;
use crate::server::ServerConnection;
use mio::net::TcpStream;
use mio::Token;
use std::net::SocketAddr;
use std::time::Instant;

/// Bits of a token used for the slab key; the rest carry the generation. Key 0 is reserved
/// (the worker's waker), so slab key `k` is stored as `k + 1`.
const KEY_BITS: u32 = usize::BITS / 2;
const KEY_MASK: usize = (1usize << KEY_BITS) - 1;

/// The worker's waker token.
pub const WAKER_TOKEN: Token = Token(0);

/// Token for slab key `key` and `generation` (generation truncated to the free bits).
pub fn token_for(key: usize, generation: u32) -> Token {
    let gen_bits = (generation as usize) & (usize::MAX >> KEY_BITS);
    Token(((key + 1) & KEY_MASK) | (gen_bits << KEY_BITS))
}

/// (slab key, generation bits) of a client token; `None` for reserved tokens.
pub fn decode_token(t: Token) -> Option<(usize, usize)> {
    let k = t.0 & KEY_MASK;
    (k != 0).then(|| (k - 1, t.0 >> KEY_BITS))
}

/// Whether a token's generation bits belong to `generation`.
pub fn generation_matches(bits: usize, generation: u32) -> bool {
    bits == (generation as usize) & (usize::MAX >> KEY_BITS)
}

pub struct Conn<C = ServerConnection> {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub core: C,
    pub generation: u32,
    /// Input not yet consumed by the core; `None` while idle (the buffer went back to the pool).
    pub rbuf: Option<Buf>,
    /// Sealed output the socket has not taken yet; `None` when all was written.
    pub wbuf: Option<Buf>,
    /// Edge-triggered readiness remembered in user space: true from a readable event until a
    /// read returns WouldBlock.
    pub readable: bool,
    /// True from a writable event until a write returns WouldBlock.
    pub writable: bool,
    /// The peer closed its side (read returned 0) or the socket failed.
    pub read_closed: bool,
    /// A write failed: nothing more can be sent.
    pub write_failed: bool,
    /// The core reported `Event::Closed`: flush, then close.
    pub closing: bool,
    /// Waiting for the buffer pool to have room again.
    pub starved: bool,
    /// Already on the worker's ready-again list.
    pub queued: bool,
    /// Set when closing starts: past it the socket is closed even with output unsent.
    pub linger_deadline: Option<Instant>,
    /// The earliest deadline this connection has in the timer heap.
    pub timer_armed: Option<Instant>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub accepted_at: Instant,
    pub first_byte_at: Option<Instant>,
    pub stall_since: Option<Instant>,
    /// Why it ended, for the close log line: (code, reason, by_peer).
    pub close_reason: Option<(u32, String, bool)>,
    /// The first key exchange completed (for the metrics' connections-by-state gauges).
    pub kex_done: bool,
}

impl<C> Conn<C> {
    pub fn new(
        socket: TcpStream,
        peer: SocketAddr,
        core: C,
        generation: u32,
        accepted_at: Instant,
    ) -> Self {
        Conn {
            socket,
            peer,
            core,
            generation,
            rbuf: None,
            wbuf: None,
            readable: true,
            writable: true,
            read_closed: false,
            write_failed: false,
            closing: false,
            starved: false,
            queued: false,
            linger_deadline: None,
            timer_armed: None,
            bytes_in: 0,
            bytes_out: 0,
            accepted_at,
            first_byte_at: None,
            stall_since: None,
            close_reason: None,
            kex_done: false,
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_out(&self) -> usize {
        self.wbuf.as_ref().map_or(0, Buf::len)
    }

    /// Bytes read and not yet consumed by the core.
    pub fn pending_in(&self) -> usize {
        self.rbuf.as_ref().map_or(0, Buf::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reserve_zero() {
        assert_eq!(decode_token(WAKER_TOKEN), None);
        let t = token_for(0, 1);
        assert_ne!(t, WAKER_TOKEN);
        let (k, g) = decode_token(t).unwrap();
        assert_eq!(k, 0);
        assert!(generation_matches(g, 1));
        assert!(!generation_matches(g, 2));
        let (k, g) = decode_token(token_for(12345, u32::MAX)).unwrap();
        assert_eq!(k, 12345);
        assert!(generation_matches(g, u32::MAX));
    }
}
