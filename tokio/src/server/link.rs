//! One open connection, as the core task sees it.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use mqtt_sansio::Packet;
use tokio::task::JoinHandle;

use super::Counters;
use super::conn::{NotQueued, Outbox};
use super::peer::Peer;
use super::tcp::{SpareBuffers, TcpLink};

/// One open connection.
pub(super) struct Link {
    pub(super) io: Io,
    /// Packets were queued since the last flush.
    pub(super) dirty: bool,
    /// What only some connections have, boxed: a connection of a server without a
    /// [`PeerCheck`](super::PeerCheck) carries none of it while it is not paused.
    pub(super) rare: Option<Box<LinkRare>>,
}

/// How a connection's bytes come and go.
pub(super) enum Io {
    /// Plain TCP: the core task reads and writes the socket itself.
    Tcp(TcpLink),
    /// TLS or WebSocket: a reader task hands the core task what it reads, and a writer
    /// task writes what the core task queued in the outbox.
    Split {
        outbox: Arc<Outbox>,
        reader: JoinHandle<()>,
        writer: JoinHandle<()>,
    },
}

/// The parts of a [`Link`] that most connections do without.
#[derive(Default)]
pub(super) struct LinkRare {
    /// The peer, kept only for a [`PeerCheck`](super::PeerCheck).
    pub(super) peer: Option<Arc<Peer>>,
    /// Bytes a reader task read before the broker paused the connection, not handed to
    /// it yet: they go in once it resumes (or is lost), so that a paused publisher's
    /// messages already read do not overflow the queues further.
    pub(super) stash: VecDeque<Bytes>,
}

impl Link {
    pub(super) fn new(io: Io, peer: Option<Arc<Peer>>) -> Link {
        Link {
            io,
            dirty: false,
            rare: peer.map(|peer| {
                Box::new(LinkRare {
                    peer: Some(peer),
                    stash: VecDeque::new(),
                })
            }),
        }
    }

    pub(super) fn rare_mut(&mut self) -> &mut LinkRare {
        self.rare.get_or_insert_with(Box::default)
    }

    pub(super) fn stashed(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| !r.stash.is_empty())
    }

    /// The next stashed input; the box goes once nothing is left in it.
    pub(super) fn unstash(&mut self) -> Option<Bytes> {
        let rare = self.rare.as_mut()?;
        let bytes = rare.stash.pop_front();
        if rare.stash.is_empty() && rare.peer.is_none() {
            self.rare = None;
        }
        bytes
    }

    /// Appends `packet`'s bytes, unless `limit` packets wait that the socket has not
    /// taken. The bound is on what the socket has not taken: a batch of many inputs can
    /// queue more than it before the flush at its end, so over plain TCP the socket gets
    /// its chance first.
    pub(super) fn push(
        &mut self,
        packet: &Packet<Bytes>,
        limit: usize,
        counters: &Counters,
        spare: &mut SpareBuffers,
    ) -> Result<(), NotQueued> {
        match &mut self.io {
            Io::Tcp(tcp) => match tcp.push(packet, limit, spare) {
                Err(NotQueued::Full) => {
                    tcp.write(counters, spare).map_err(NotQueued::Broken)?;
                    tcp.push(packet, limit, spare)
                }
                pushed => pushed,
            },
            Io::Split { outbox, .. } => outbox.push(packet, limit),
        }
    }

    /// Writes what was queued, as far as the socket takes it without waiting (plain
    /// TCP), or hands it to the writer task. `Ok(true)`: everything was written. With
    /// `notify`, when something is left, the core task hears when it is written.
    pub(super) fn flush(
        &mut self,
        notify: bool,
        counters: &Counters,
        spare: &mut SpareBuffers,
    ) -> std::io::Result<bool> {
        match &mut self.io {
            Io::Tcp(tcp) => {
                let done = tcp.write(counters, spare)?;
                tcp.notify |= notify && !done;
                Ok(done)
            }
            Io::Split { outbox, .. } => Ok(outbox.flush(notify)),
        }
    }

    /// The broker stops (`true`) or resumes reading the connection.
    pub(super) fn set_paused(&self, paused: bool) {
        match &self.io {
            // Not read while paused (the core task asks the broker before each read):
            // listed on resume to read what waits.
            Io::Tcp(tcp) => {
                if !paused {
                    tcp.relist();
                }
            }
            Io::Split { outbox, .. } => outbox.set_paused(paused),
        }
    }

    /// Closes the connection after what is queued for it is written: the task that
    /// writes it, if anything waits.
    pub(super) fn close(self, counters: &Counters) -> Option<JoinHandle<()>> {
        match self.io {
            Io::Tcp(tcp) if tcp.has_output() => {
                Some(tokio::spawn(tcp.flush_and_close(counters.clone())))
            }
            // Dropping the socket closes it.
            Io::Tcp(_) => None,
            Io::Split {
                outbox,
                reader,
                writer,
            } => {
                outbox.close();
                reader.abort();
                Some(writer)
            }
        }
    }

    /// Closes the connection at once, without writing what is queued.
    pub(super) fn abort(self) {
        if let Io::Split { reader, writer, .. } = self.io {
            reader.abort();
            writer.abort();
        }
    }
}
