//! The writer task of a connection (client and server alike): writes the frames its driver
//! queues, in order, with as few system calls as the queue allows.
//!
//! ```text
//!  driver ──Chain──► channel ──► queue [frame][frame][frame]...  ──write_vectored──► TCP
//!                                  each frame: header segment, stub segment (shared)
//! ```
//!
//! A frame is a [`Chain`]: an unprotected fragment is its header and a slice of the call's
//! stub, so a backup read's data reaches the socket without having been copied on its way.
//! Frames queued when the writer wakes go out in one `write_vectored`; a frame written in part
//! is resumed where the kernel stopped.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Buf as _;
use dsbackup_proto::Chain;
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};

use crate::metrics::Gauge;

/// Segments handed to one `write_vectored` at most (Linux takes 1024): enough for the frames
/// queued when calls answer faster than the socket drains.
const MAX_SEGMENTS_PER_WRITE: usize = 128;

/// Writes every frame the channel gives until the driver drops its sender, then shuts the
/// write side down. Stops at the first write error (`who` names the side in the trace).
/// `written`, if given, counts the bytes written so far (the driver's backpressure).
pub(crate) async fn write_frames(
    mut write: OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Chain>,
    who: &'static str,
    written: Option<watch::Sender<u64>>,
    _task: Gauge,
) {
    let mut queue: VecDeque<Chain> = VecDeque::new();
    while let Some(frame) = frames.recv().await {
        queue.push_back(frame);
        if let Err(error) =
            write_queued(&mut write, &mut frames, &mut queue, written.as_ref()).await
        {
            tracing::debug!(%error, who, "writer stops");
            return;
        }
    }
    let _ = write.shutdown().await;
}

/// Writes the frames in `queue`, and those the channel holds meanwhile, until both are empty.
async fn write_queued(
    write: &mut OwnedWriteHalf,
    frames: &mut mpsc::UnboundedReceiver<Chain>,
    queue: &mut VecDeque<Chain>,
    counter: Option<&watch::Sender<u64>>,
) -> std::io::Result<()> {
    loop {
        let mut segments: usize = queue.iter().map(|frame| frame.segments().len()).sum();
        while segments < MAX_SEGMENTS_PER_WRITE {
            match frames.try_recv() {
                Ok(frame) => {
                    segments += frame.segments().len();
                    queue.push_back(frame);
                }
                Err(_) => break,
            }
        }
        queue.retain(|frame| !frame.is_empty());
        if queue.is_empty() {
            return Ok(());
        }
        let mut written = {
            let mut slices = [IoSlice::new(&[]); MAX_SEGMENTS_PER_WRITE];
            let mut filled = 0;
            for frame in queue.iter() {
                let Some(free) = slices.get_mut(filled..).filter(|free| !free.is_empty()) else {
                    break;
                };
                filled += frame.chunks_vectored(free);
            }
            write
                .write_vectored(slices.get(..filled).unwrap_or_default())
                .await?
        };
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        if let Some(counter) = counter {
            let bytes = u64::try_from(written).unwrap_or(u64::MAX);
            counter.send_modify(|total| *total = total.saturating_add(bytes));
        }
        // Drops the frames written whole, advances into the first one written in part.
        while let Some(front) = queue.front_mut() {
            if written < front.len() {
                front.advance(written);
                break;
            }
            written -= front.len();
            queue.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use tokio::io::AsyncReadExt as _;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::metrics::{Kind, Metrics};

    /// Frames queued faster than the socket drains are written many segments to a
    /// `write_vectored`, some in part: the peer still reads every byte, in order, and then the
    /// end of stream.
    #[tokio::test]
    async fn the_writer_sends_every_queued_frame_whole_and_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, client) = tokio::join!(listener.accept(), TcpStream::connect(addr));
        let (_read, write) = accepted.unwrap().0.into_split();
        let (frames, frames_rx) = mpsc::unbounded_channel::<Chain>();
        let mut expected = Vec::new();
        // 300 frames of 0 to 3 segments of 1..=60_001 bytes (about 13 MB, more than the socket
        // buffers hold), empty ones among them, all queued before the writer runs.
        for i in 0..300_u32 {
            let mut frame = Chain::new();
            for part in 0..i % 4 {
                let len = usize::try_from((i + part) * 7919 % 60_002).unwrap();
                let seed = (i + part).to_le_bytes()[0];
                let segment: Vec<u8> = (0..len).map(|j| j.to_le_bytes()[0] ^ seed).collect();
                expected.extend_from_slice(&segment);
                frame.push(Bytes::from(segment));
            }
            frames.send(frame).unwrap();
        }
        drop(frames);
        let writer = tokio::spawn(write_frames(
            write,
            frames_rx,
            "test",
            None,
            Metrics::new().gauge(Kind::Task),
        ));
        let mut received = Vec::new();
        client.unwrap().read_to_end(&mut received).await.unwrap();
        writer.await.unwrap();
        assert_eq!(received.len(), expected.len());
        assert!(received == expected, "the bytes differ");
    }
}
