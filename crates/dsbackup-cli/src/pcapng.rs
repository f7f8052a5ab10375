//! `--capture FILE.pcapng`: the PDUs of every connection a command makes, written as the TCP
//! traffic that carried them, for Wireshark and tshark (and `dsbackup inspect`).
//!
//! Each connection becomes a TCP stream of its own between its real addresses and ports: a
//! handshake when it opens, one segment per PDU (cut at 32 KiB), a FIN each way when it closes.
//! Packets are raw IP (link type 101), with IP and TCP checksums, so no frame shows as
//! malformed. The bytes are the PDUs as they went on the wire, sealed ones sealed: tshark
//! unseals them with `-o ntlmssp.nt_password:PASSWORD`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use dsbackup_transport::{Tap, TapEnds, TapEvent};
use etherparse::PacketBuilder;

/// Largest TCP payload of one packet.
const MAX_SEGMENT: usize = 32 * 1024;
/// LINKTYPE_RAW: packets start with their IPv4 or IPv6 header.
const LINKTYPE_RAW: u16 = 101;
/// The initial sequence numbers of the client and the server of every stream.
const CLIENT_ISN: u32 = 0x1000_0000;
const SERVER_ISN: u32 = 0x2000_0000;

/// TCP flags of a synthesized segment.
#[derive(Clone, Copy)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

const SYN: Flags = Flags {
    syn: true,
    ack: false,
    psh: false,
    fin: false,
};
const SYN_ACK: Flags = Flags { ack: true, ..SYN };
const ACK: Flags = Flags {
    syn: false,
    ack: true,
    psh: false,
    fin: false,
};
const PSH_ACK: Flags = Flags { psh: true, ..ACK };
const FIN_ACK: Flags = Flags { fin: true, ..ACK };

/// The next sequence number of each side of a stream.
#[derive(Clone, Copy)]
struct Stream {
    client: u32,
    server: u32,
}

/// The open file and the streams in it.
struct Writer {
    out: BufWriter<File>,
    streams: HashMap<TapEnds, Stream>,
    /// The first write error (logged); nothing more is written after it.
    error: Option<io::Error>,
}

/// A capture file being written; [`tap`](Self::tap) feeds it.
#[derive(Clone)]
pub(crate) struct Capture(Arc<Mutex<Writer>>);

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture")
    }
}

impl Capture {
    /// Creates (or replaces) `path` and writes the file's header.
    ///
    /// # Errors
    /// When the file cannot be created or written.
    pub(crate) fn create(path: &Path) -> anyhow::Result<Self> {
        let file = File::create(path)
            .with_context(|| format!("creating the capture file {}", path.display()))?;
        let mut out = BufWriter::new(file);
        write_header(&mut out)
            .and_then(|()| out.flush())
            .with_context(|| format!("writing the capture file {}", path.display()))?;
        Ok(Self(Arc::new(Mutex::new(Writer {
            out,
            streams: HashMap::new(),
            error: None,
        }))))
    }

    /// The tap that writes every connection's traffic into this file.
    pub(crate) fn tap(&self) -> Tap {
        let capture = self.clone();
        Tap::new(move |ends, event| capture.event(ends, event))
    }

    /// Writes one event of a connection.
    pub(crate) fn event(&self, ends: TapEnds, event: TapEvent<'_>) {
        let mut writer = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.error.is_some() {
            return;
        }
        if let Err(error) = writer.event(ends, event) {
            // Said once: the command goes on, the capture stops.
            tracing::warn!(%error, "cannot write the capture file: no more traffic goes into it");
            writer.error = Some(error);
        }
    }
}

impl Writer {
    fn event(&mut self, ends: TapEnds, event: TapEvent<'_>) -> io::Result<()> {
        let (client, server) = (ends.client, ends.server);
        match event {
            TapEvent::Opened => {
                self.streams.insert(
                    ends,
                    Stream {
                        client: CLIENT_ISN.wrapping_add(1),
                        server: SERVER_ISN.wrapping_add(1),
                    },
                );
                self.packet(client, server, CLIENT_ISN, 0, SYN, &[])?;
                self.packet(server, client, SERVER_ISN, CLIENT_ISN + 1, SYN_ACK, &[])?;
                self.packet(client, server, CLIENT_ISN + 1, SERVER_ISN + 1, ACK, &[])?;
            }
            TapEvent::FromClient(bytes) => self.data(ends, true, bytes)?,
            TapEvent::FromServer(bytes) => self.data(ends, false, bytes)?,
            TapEvent::Closed => {
                if let Some(stream) = self.streams.remove(&ends) {
                    self.packet(client, server, stream.client, stream.server, FIN_ACK, &[])?;
                    let (c, s) = (stream.client.wrapping_add(1), stream.server);
                    self.packet(server, client, s, c, FIN_ACK, &[])?;
                    self.packet(client, server, c, s.wrapping_add(1), ACK, &[])?;
                }
            }
        }
        self.out.flush()
    }

    /// PDUs sent by the client (`from_client`) or the server, one segment per 32 KiB.
    fn data(&mut self, ends: TapEnds, from_client: bool, bytes: &[u8]) -> io::Result<()> {
        let Some(mut stream) = self.streams.get(&ends).copied() else {
            return Ok(());
        };
        for chunk in bytes.chunks(MAX_SEGMENT) {
            let len = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
            if from_client {
                self.packet(
                    ends.client,
                    ends.server,
                    stream.client,
                    stream.server,
                    PSH_ACK,
                    chunk,
                )?;
                stream.client = stream.client.wrapping_add(len);
            } else {
                self.packet(
                    ends.server,
                    ends.client,
                    stream.server,
                    stream.client,
                    PSH_ACK,
                    chunk,
                )?;
                stream.server = stream.server.wrapping_add(len);
            }
        }
        self.streams.insert(ends, stream);
        Ok(())
    }

    /// One IP packet carrying one TCP segment.
    fn packet(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: &[u8],
    ) -> io::Result<()> {
        let builder = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s.octets(), d.octets(), 64),
            (s, d) => PacketBuilder::ipv6(v6(s).octets(), v6(d).octets(), 64),
        };
        let mut tcp = builder.tcp(src.port(), dst.port(), seq, 65535);
        if flags.syn {
            tcp = tcp.syn();
        }
        if flags.ack {
            tcp = tcp.ack(ack);
        }
        if flags.psh {
            tcp = tcp.psh();
        }
        if flags.fin {
            tcp = tcp.fin();
        }
        let mut packet = Vec::with_capacity(tcp.size(payload.len()));
        tcp.write(&mut packet, payload).map_err(io::Error::other)?;
        write_packet(&mut self.out, &packet)
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    }
}

/// The section header block and the one interface description block (raw IP).
fn write_header(out: &mut impl Write) -> io::Result<()> {
    // Section header: byte-order magic, version 1.0, section length unknown (-1).
    let mut body = Vec::new();
    body.extend_from_slice(&0x1a2b_3c4d_u32.to_le_bytes());
    body.extend_from_slice(&1_u16.to_le_bytes());
    body.extend_from_slice(&0_u16.to_le_bytes());
    body.extend_from_slice(&u64::MAX.to_le_bytes());
    write_block(out, 0x0a0d_0d0a, &body)?;
    // Interface description: link type, reserved, snap length 0 (no limit); microseconds.
    let mut body = Vec::new();
    body.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    body.extend_from_slice(&0_u16.to_le_bytes());
    body.extend_from_slice(&0_u32.to_le_bytes());
    write_block(out, 1, &body)
}

/// An enhanced packet block on interface 0, stamped with the time now.
fn write_packet(out: &mut impl Write, packet: &[u8]) -> io::Result<()> {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros());
    let micros = u64::try_from(micros).unwrap_or(u64::MAX);
    let len = u32::try_from(packet.len()).map_err(io::Error::other)?;
    let mut body = Vec::with_capacity(20 + packet.len() + 3);
    body.extend_from_slice(&0_u32.to_le_bytes());
    body.extend_from_slice(&u32::try_from(micros >> 32).unwrap_or(0).to_le_bytes());
    body.extend_from_slice(
        &u32::try_from(micros & 0xffff_ffff)
            .unwrap_or(0)
            .to_le_bytes(),
    );
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(packet);
    body.resize(body.len().next_multiple_of(4), 0);
    write_block(out, 6, &body)
}

/// A block: type, total length, body (a multiple of 4 bytes), total length again.
fn write_block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = u32::try_from(body.len() + 12).map_err(io::Error::other)?;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&total.to_le_bytes())
}
