//! The user's input to a running program, without holding up the connection.
//!
//! russh hands channel data to the handler from the connection's only task; while the
//! handler waits, nothing else moves on that connection — not even output to the user.
//! Waiting there for a full shell queue can deadlock a session that streams both ways
//! (`cat` of an upload): the shell waits to send output, the output waits for the
//! connection, the connection waits for the shell to take input. So input goes to an
//! [`InputFeed`] that queues it at once, and a small task moves it to the shell's bounded
//! queue. The handler waits only when more than [`MAX_PENDING`] bytes of one channel are
//! queued, which bounds memory per channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gatehouse_shell::Input;
use tokio::sync::{Notify, mpsc};

/// Input bytes one channel may have queued before the connection waits for the shell.
///
/// Past it, the old hazard returns: if the target then also stops reading (it blocks on
/// output the user cannot receive while the connection waits here), the session stalls.
/// That needs a client pushing this much input at a target that ignores it while it writes;
/// the cost of the margin is memory, and only for such a channel.
pub const MAX_PENDING: usize = 16 * 1024 * 1024;

struct Pending {
    bytes: AtomicUsize,
    drained: Notify,
}

/// The sending end, kept with the channel.
pub(crate) struct InputFeed {
    tx: mpsc::UnboundedSender<Input>,
    pending: Arc<Pending>,
}

impl InputFeed {
    /// A feed into `shell`, the bounded queue a program reads its input from.
    pub fn new(shell: mpsc::Sender<Input>) -> InputFeed {
        let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
        let pending = Arc::new(Pending { bytes: AtomicUsize::new(0), drained: Notify::new() });
        let mover = pending.clone();
        tokio::spawn(async move {
            while let Some(input) = rx.recv().await {
                let n = size(&input);
                let gone = shell.send(input).await.is_err();
                mover.bytes.fetch_sub(n, Ordering::AcqRel);
                mover.drained.notify_waiters();
                if gone {
                    break;
                }
            }
            // The program ended: release anyone waiting, and drop what is still queued.
            mover.bytes.store(0, Ordering::Release);
            mover.drained.notify_waiters();
        });
        InputFeed { tx, pending }
    }

    /// Queues data; waits only while the channel has more than [`MAX_PENDING`] bytes queued.
    pub async fn data(&self, bytes: &[u8]) {
        self.pending.bytes.fetch_add(bytes.len(), Ordering::AcqRel);
        if self.tx.send(Input::Data(bytes.to_vec())).is_err() {
            return;
        }
        loop {
            let drained = self.pending.drained.notified();
            if self.pending.bytes.load(Ordering::Acquire) <= MAX_PENDING || self.tx.is_closed() {
                return;
            }
            drained.await;
        }
    }

    /// Queues a window change, a signal or the end of input (in order with the data).
    pub fn send(&self, input: Input) {
        let _ = self.tx.send(input);
    }
}

fn size(input: &Input) -> usize {
    match input {
        Input::Data(bytes) => bytes.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn data_is_queued_without_waiting_and_kept_in_order() {
        let (shell_tx, mut shell_rx) = mpsc::channel(1);
        let feed = InputFeed::new(shell_tx);
        // Far more than the shell queue holds, while nobody reads: must not wait.
        for i in 0..100u8 {
            feed.data(&[i]).await;
        }
        feed.send(Input::Eof);
        for i in 0..100u8 {
            assert_eq!(shell_rx.recv().await, Some(Input::Data(vec![i])));
        }
        assert_eq!(shell_rx.recv().await, Some(Input::Eof));
    }

    #[tokio::test]
    async fn waits_past_the_limit_until_the_shell_reads() {
        let (shell_tx, mut shell_rx) = mpsc::channel(1);
        let feed = Arc::new(InputFeed::new(shell_tx));
        // Fill the shell queue, then queue exactly the limit behind it.
        feed.data(&[9]).await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        feed.data(&vec![0u8; MAX_PENDING]).await;
        let writer = {
            let feed = feed.clone();
            tokio::spawn(async move { feed.data(&[1u8; 16]).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!writer.is_finished(), "over the limit the sender waits");
        assert_eq!(shell_rx.recv().await, Some(Input::Data(vec![9])));
        assert!(matches!(shell_rx.recv().await, Some(Input::Data(d)) if d.len() == MAX_PENDING));
        tokio::time::timeout(std::time::Duration::from_secs(5), writer).await.expect("released once drained").unwrap();
    }

    #[tokio::test]
    async fn a_finished_program_releases_the_sender() {
        let (shell_tx, shell_rx) = mpsc::channel(1);
        let feed = InputFeed::new(shell_tx);
        drop(shell_rx);
        tokio::time::timeout(std::time::Duration::from_secs(5), feed.data(&vec![0u8; 2 * MAX_PENDING]))
            .await
            .expect("no wait once the program is gone");
    }
}
