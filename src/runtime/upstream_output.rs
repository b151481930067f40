//! The upstream leg's output, on the same pipeline as a downstream connection's: the client
//! core encodes its messages into a pooled buffer the worker lends it, seals everything it
//! staged in one pass (`poll_transmit` hands the batch over in that buffer), the batch waits
//! in the link's [`OutQueue`] and all queued batches leave in one `writev`; written buffers
//! go back to the pool. A partial write moves an offset, so no unsent byte is moved. The lent
//! buffer is charged with the connection (the core's `held_bytes`), queued batches by the
//! pool, as for the downstream side.

use super::{Conn, Core, State};
use crate::metrics::record;
use crate::runtime::out_queue::MAX_IOV;
use crate::runtime::upstream_link::UpstreamLink;
use std::io::{self, IoSlice, Write};
use std::time::Instant;

impl State {
    /// Charges what the connection's cores hold while its link is out of `conn` (taken for
    /// the upstream's round).
    pub(super) fn recharge_upstream<C: Core>(&mut self, conn: &mut Conn<C>, link: &UpstreamLink) {
        let held = conn.core.held_bytes() + link.held_bytes();
        self.pool.charge(conn.charged, held);
        conn.charged = held;
    }

    /// Lends the upstream core an empty pooled output buffer, sized by its last batch, when it
    /// holds none. Without budget room the core grows its own (counted through `held_bytes`).
    pub(super) fn lend_upstream_output<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        link: &mut UpstreamLink,
    ) {
        if link.core.output_capacity() != 0 {
            return;
        }
        let mut want = (link.out_hint as usize).max(1);
        if link.is_carrying() {
            want = want.max(crate::proxy::bridge::PUMP_BUDGET + 4096);
        }
        if self.pool.lend_vec(want, |v| link.core.lend_output(v)) {
            self.recharge_upstream(conn, link);
            link.lent = true;
        }
    }

    /// Takes an empty output buffer back from the upstream core (an idle link holds none).
    pub(super) fn reclaim_upstream_output<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        link: &mut UpstreamLink,
    ) {
        if let Some(v) = link.core.reclaim_output() {
            link.lent = false;
            // The core's charge drops first, so the peak never counts the buffer twice.
            self.recharge_upstream(conn, link);
            self.pool.take_back_vec(v);
        }
    }

    /// Seals what the upstream core staged (one batch) → the link's queue → one `writev`.
    /// Returns true if bytes were written.
    pub(super) fn transmit_upstream<C: Core>(
        &mut self,
        conn: &mut Conn<C>,
        link: &mut UpstreamLink,
    ) -> bool {
        self.seal_upstream(conn, link);
        let wrote = self.write_upstream(link);
        if !link.wq.is_empty() && self.pool.over_budget() {
            // As downstream: output that cannot be held ends the connection.
            self.out_of_memory(conn);
        }
        wrote
    }

    /// Seals what the upstream core staged in one pass and queues the batch, in the buffer
    /// it was staged in (the core keeps none).
    pub(super) fn seal_upstream<C: Core>(&mut self, conn: &mut Conn<C>, link: &mut UpstreamLink) {
        let mut batch = Vec::new();
        let started = Instant::now();
        let packets = link.core.poll_transmit(&mut batch);
        if packets > 0 {
            record(&mut self.metrics.batch, started.elapsed());
            crate::metrics::record_count(&mut self.metrics.batch_packets, packets);
            self.metrics.sealed_packets += packets as u64;
        }
        if batch.is_empty() {
            return;
        }
        if std::mem::take(&mut link.lent) {
            self.metrics.out_buffers += 1;
        }
        link.out_hint = u32::try_from(batch.len()).unwrap_or(u32::MAX);
        // The batch is the pool's to count now: the core's charge drops first.
        self.recharge_upstream(conn, link);
        self.pool.adopt(batch.capacity());
        if let Some(v) = link.wq.push(batch) {
            self.pool.release_vec(v);
        }
    }

    /// Writes the queued batches with one `writev` per attempt; what the socket does not take
    /// stays where it was sealed. A write error drops the socket (the caller sees it gone)
    /// and the queue with it.
    pub(super) fn write_upstream(&mut self, link: &mut UpstreamLink) -> bool {
        let mut wrote = false;
        while link.writable && !link.wq.is_empty() {
            let Some(s) = link.socket.as_mut() else { break };
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let n = link.wq.io_slices(&mut iov);
            match s.write_vectored(iov.get(..n).unwrap_or_default()) {
                Ok(0) => link.socket = None,
                Ok(n) => {
                    let pool = &mut self.pool;
                    link.wq.consume(n, |v| pool.release_vec(v));
                    wrote = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => link.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => link.socket = None,
            }
        }
        if link.socket.is_none() {
            link.wq.clear(|v| self.pool.release_vec(v));
        }
        wrote
    }
}
