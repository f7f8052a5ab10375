//! The accept loop of a listener: a connection task per association within
//! `ServerOptions::max_associations`, a bind_nak for the others.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dsbackup_proto::{BindNak, CommonHeader, Pdu, PduBody, RejectReason};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::FramedRead;

use super::connection::Connection;
use super::{RpcInterface, Shared};
use crate::codec::FrameCodec;
use crate::metrics::{Gauge, Kind};

pub(super) fn spawn_listener(
    shared: &Arc<Shared>,
    listener: TcpListener,
    served: Arc<[Arc<dyn RpcInterface>]>,
    port: u16,
) {
    let task = shared.metrics.gauge(Kind::Task);
    let shared_for_task = Arc::clone(shared);
    shared
        .tracker
        .spawn(accept_loop(shared_for_task, listener, served, port, task));
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    served: Arc<[Arc<dyn RpcInterface>]>,
    port: u16,
    _task: Gauge,
) {
    loop {
        let accepted = tokio::select! {
            () = shared.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        let task = shared.metrics.gauge(Kind::Task);
        match Arc::clone(&shared.associations).try_acquire_owned() {
            Ok(permit) => {
                let connection =
                    Connection::new(&shared, stream, Arc::clone(&served), port, permit);
                if let Some(connection) = connection {
                    shared.tracker.spawn(connection.run(task));
                }
            }
            Err(_) => {
                shared.tracker.spawn(refuse(stream, task));
            }
        }
    }
}

/// Answers the bind of a connection past `max_associations` with a bind_nak
/// `local_limit_exceeded`, and closes it.
async fn refuse(mut stream: TcpStream, _task: Gauge) {
    let (read, mut write) = stream.split();
    let mut reader = FramedRead::new(read, FrameCodec::default());
    let Ok(Some(Ok(frame))) = timeout(Duration::from_secs(5), reader.next()).await else {
        return;
    };
    send_bind_nak(&mut write, &frame, RejectReason::LOCAL_LIMIT_EXCEEDED).await;
}

/// Answers the bind `frame` with a bind_nak for `reason` and shuts the connection down.
pub(super) async fn send_bind_nak(
    write: &mut (impl tokio::io::AsyncWrite + Unpin),
    frame: &Bytes,
    reason: RejectReason,
) {
    let call_id = CommonHeader::decode(frame).map_or(0, |header| header.call_id);
    let nak = Pdu::new(call_id, PduBody::BindNak(BindNak::new(reason)));
    if let Ok(bytes) = nak.to_bytes() {
        let _ = write.write_all(&bytes).await;
    }
    let _ = write.shutdown().await;
}
