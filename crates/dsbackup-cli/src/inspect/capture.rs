//! Capture files (pcap and pcapng): every TCP stream put back together in each direction and cut
//! into DCE/RPC PDUs, in the order the capture completes them.
//!
//! ```text
//! file blocks (pcap-parser) -> link layer by link type -> IPv4/IPv6 -> TCP (etherparse)
//!   -> stream (4-tuple, numbered in order of first appearance, a new SYN starts a new one)
//!   -> direction: bytes in sequence order (out-of-order segments held, retransmissions trimmed)
//!   -> PDUs split by frag_length, each tagged with the frame that completed it
//! ```
//!
//! A stream whose bytes are not DCE/RPC is reported once and not followed further; bytes missing
//! from a direction (a segment the capture lost) are reported at the end.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use bytes::{Buf, Bytes, BytesMut};
use dsbackup_proto::frame_len;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned};

/// Most bytes held for one direction: out-of-order segments waiting for a gap to fill, and the
/// start of a PDU waiting for its end (a PDU is at most 65535 bytes).
const MAX_HELD: usize = 16 * 1024 * 1024;

/// Whether `data` starts like a pcap or pcapng file.
pub(crate) fn is_capture(data: &[u8]) -> bool {
    const MAGICS: [[u8; 4]; 5] = [
        [0xd4, 0xc3, 0xb2, 0xa1], // pcap, microseconds, little-endian
        [0xa1, 0xb2, 0xc3, 0xd4], // pcap, microseconds, big-endian
        [0x4d, 0x3c, 0xb2, 0xa1], // pcap, nanoseconds, little-endian
        [0xa1, 0xb2, 0x3c, 0x4d], // pcap, nanoseconds, big-endian
        [0x0a, 0x0d, 0x0d, 0x0a], // pcapng section header
    ];
    data.get(..4)
        .is_some_and(|head| MAGICS.iter().any(|m| m == head))
}

/// Which way bytes went on a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Way {
    /// From the client (the side that sent the SYN, or else the first packet) to the server.
    ToServer,
    /// From the server to the client.
    ToClient,
}

impl Way {
    /// `I` or `O`, as the hex text format writes directions.
    pub(crate) fn letter(self) -> &'static str {
        match self {
            Self::ToServer => "I",
            Self::ToClient => "O",
        }
    }
}

/// Where a PDU or an error of a capture comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    /// The TCP stream, numbered from 0 in order of first appearance (as tshark's `tcp.stream`).
    pub(crate) stream: usize,
    /// The frame (packet number from 1) whose arrival completed it.
    pub(crate) frame: u64,
    /// The direction.
    pub(crate) way: Way,
    /// The sender's address.
    pub(crate) src: SocketAddr,
    /// The receiver's address.
    pub(crate) dst: SocketAddr,
    /// The offset of its first byte among the bytes of this direction.
    pub(crate) offset: u64,
}

/// What reading a capture yields, in order.
#[derive(Debug)]
pub(crate) enum Event {
    /// One whole PDU.
    Pdu(Place, Bytes),
    /// Something that could not be followed; the rest goes on.
    Error {
        /// The stream, if the error belongs to one.
        stream: Option<usize>,
        /// The frame, if the error belongs to one.
        frame: Option<u64>,
        /// What went wrong.
        message: String,
    },
}

/// Reads every packet of a capture and returns its PDUs and errors, in capture order.
pub(crate) fn read(data: &[u8]) -> Vec<Event> {
    let mut streams = Streams::default();
    for_each_packet(data, &mut |frame, linktype, packet| {
        streams.packet(frame, linktype, packet);
    })
    .unwrap_or_else(|(frame, message)| {
        streams.events.push(Event::Error {
            stream: None,
            frame,
            message,
        });
    });
    streams.finish()
}

/// Calls `f` with the number, link type and bytes of every packet; the frame number and reason
/// where the file stops being readable.
fn for_each_packet(
    data: &[u8],
    f: &mut dyn FnMut(u64, Linktype, &[u8]),
) -> Result<(), (Option<u64>, String)> {
    let mut frame = 0_u64;
    let unreadable = |frame: u64, error: &dyn fmt::Debug| {
        (
            Some(frame + 1),
            format!(
                "the capture file is unreadable from packet {}: {error:?}",
                frame + 1
            ),
        )
    };
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let blocks = pcap_parser::PcapNGSlice::from_slice(data)
            .map_err(|error| (None, format!("not a pcapng file: {error:?}")))?;
        // The link types of the current section's interfaces, by interface id.
        let mut interfaces: Vec<Linktype> = Vec::new();
        for block in blocks {
            let block = block.map_err(|error| unreadable(frame, &error))?;
            let PcapBlockOwned::NG(block) = block else {
                continue;
            };
            let (if_id, packet) = match &block {
                Block::SectionHeader(_) => {
                    interfaces.clear();
                    continue;
                }
                Block::InterfaceDescription(idb) => {
                    interfaces.push(idb.linktype);
                    continue;
                }
                Block::EnhancedPacket(epb) => (
                    epb.if_id,
                    pcap_parser::traits::PcapNGPacketBlock::packet_data(epb),
                ),
                Block::SimplePacket(spb) => {
                    (0, pcap_parser::traits::PcapNGPacketBlock::packet_data(spb))
                }
                _ => continue,
            };
            frame += 1;
            let linktype = usize::try_from(if_id)
                .ok()
                .and_then(|id| interfaces.get(id).copied())
                .ok_or_else(|| {
                    (
                        Some(frame),
                        format!("packet {frame} names interface {if_id}, which is not described"),
                    )
                })?;
            f(frame, linktype, packet);
        }
    } else {
        let blocks = pcap_parser::LegacyPcapSlice::from_slice(data)
            .map_err(|error| (None, format!("not a pcap file: {error:?}")))?;
        let linktype = blocks.header.network;
        for block in blocks {
            let block = block.map_err(|error| unreadable(frame, &error))?;
            if let PcapBlockOwned::Legacy(packet) = block {
                frame += 1;
                f(frame, linktype, packet.data);
            }
        }
    }
    Ok(())
}

/// The IP packet inside a link-layer frame, sliced down to TCP.
fn slice(linktype: Linktype, packet: &[u8]) -> Result<SlicedPacket<'_>, String> {
    let sliced = match linktype {
        Linktype::ETHERNET => SlicedPacket::from_ethernet(packet),
        Linktype::LINUX_SLL => SlicedPacket::from_linux_sll(packet),
        // Linux cooked v2: a 20-byte header, then the network layer.
        Linktype::LINUX_SLL2 => SlicedPacket::from_ip(packet.get(20..).unwrap_or_default()),
        // BSD loopback: a 4-byte address family, then IPv4 or IPv6.
        Linktype::NULL | Linktype::LOOP => {
            SlicedPacket::from_ip(packet.get(4..).unwrap_or_default())
        }
        Linktype::RAW | Linktype::IPV4 | Linktype::IPV6 => SlicedPacket::from_ip(packet),
        other => return Err(format!("link type {other} is not read")),
    };
    sliced.map_err(|error| error.to_string())
}

/// One direction of a stream.
#[derive(Debug, Default)]
struct Direction {
    /// The sequence number of the next byte in order, once known.
    next: Option<u32>,
    /// Segments past a gap: (sequence number, bytes).
    ahead: Vec<(u32, Bytes)>,
    /// Bytes in order not yet cut into PDUs.
    buf: BytesMut,
    /// Offset of `buf`'s first byte among this direction's bytes.
    offset: u64,
    /// Bytes held in `ahead`.
    held: usize,
    /// Set once the bytes stopped being DCE/RPC: nothing more is followed.
    dead: bool,
}

impl Direction {
    /// Takes a segment: appended when in order (with the held ones it lets in), held when past
    /// a gap.
    ///
    /// # Errors
    /// Too many bytes held past a gap.
    fn segment(&mut self, seq: u32, syn: bool, payload: &[u8]) -> Result<(), String> {
        let seq = if syn { seq.wrapping_add(1) } else { seq };
        let next = *self.next.get_or_insert(seq);
        if payload.is_empty() {
            return Ok(());
        }
        let gap = seq.wrapping_sub(next);
        if gap == 0 || gap > u32::MAX / 2 {
            self.append(seq, payload);
            self.drain_ahead();
        } else {
            self.held = self.held.saturating_add(payload.len());
            if self.held > MAX_HELD {
                return Err(format!(
                    "over {MAX_HELD} bytes held past a gap in the sequence: segments missing"
                ));
            }
            self.ahead.push((seq, Bytes::copy_from_slice(payload)));
        }
        Ok(())
    }

    /// Appends the part of a segment starting at `seq` that is past `next` (a retransmission
    /// adds only what is new).
    fn append(&mut self, seq: u32, payload: &[u8]) {
        let Some(next) = self.next else { return };
        let old = next.wrapping_sub(seq);
        if old > u32::MAX / 2 {
            // Starts past `next`: not in order yet (the callers check).
            return;
        }
        let old = usize::try_from(old).unwrap_or(usize::MAX);
        if let Some(new) = payload.get(old..) {
            self.buf.extend_from_slice(new);
            self.next = Some(next.wrapping_add(u32::try_from(new.len()).unwrap_or(0)));
        }
    }

    /// Moves the held segments that are now in order into `buf`.
    fn drain_ahead(&mut self) {
        while let Some(next) = self.next {
            let Some(index) = self
                .ahead
                .iter()
                .position(|(seq, _)| next.wrapping_sub(*seq) <= u32::MAX / 2)
            else {
                break;
            };
            let (seq, bytes) = self.ahead.swap_remove(index);
            self.held = self.held.saturating_sub(bytes.len());
            self.append(seq, &bytes);
        }
    }

    /// Cuts the whole PDUs off the front of `buf`: (offset, bytes).
    fn pdus(&mut self) -> Result<Vec<(u64, Bytes)>, String> {
        let mut out = Vec::new();
        while let Some(len) = frame_len(&self.buf, u16::MAX).map_err(|error| {
            format!(
                "not DCE/RPC at byte {} of this direction: {error}",
                self.offset
            )
        })? {
            let pdu = self.buf.split_to(len).freeze();
            out.push((self.offset, pdu));
            self.offset += u64::try_from(len).unwrap_or(0);
        }
        if self.buf.len() > MAX_HELD {
            return Err(format!("over {MAX_HELD} bytes without a whole PDU"));
        }
        Ok(out)
    }
}

/// One TCP connection.
#[derive(Debug)]
struct Stream {
    index: usize,
    client: SocketAddr,
    server: SocketAddr,
    to_server: Direction,
    to_client: Direction,
    /// Whether data went by (a SYN after data starts a new stream on the same ports).
    data: bool,
}

/// Every stream of the capture.
#[derive(Debug, Default)]
struct Streams {
    by_ends: HashMap<(SocketAddr, SocketAddr), Stream>,
    count: usize,
    events: Vec<Event>,
    /// Link types already reported as not read.
    unread: Vec<Linktype>,
}

impl Streams {
    fn packet(&mut self, frame: u64, linktype: Linktype, packet: &[u8]) {
        let sliced = match slice(linktype, packet) {
            Ok(sliced) => sliced,
            Err(message) => {
                if self.unread.contains(&linktype) {
                    return;
                }
                if matches!(
                    linktype,
                    Linktype::ETHERNET
                        | Linktype::LINUX_SLL
                        | Linktype::LINUX_SLL2
                        | Linktype::NULL
                        | Linktype::LOOP
                        | Linktype::RAW
                        | Linktype::IPV4
                        | Linktype::IPV6
                ) {
                    // A damaged packet of a link type that is read: this packet only.
                    self.events.push(Event::Error {
                        stream: None,
                        frame: Some(frame),
                        message: format!("packet {frame}: {message}"),
                    });
                } else {
                    self.unread.push(linktype);
                    self.events.push(Event::Error {
                        stream: None,
                        frame: Some(frame),
                        message: format!("packet {frame}: {message} (nor any like it after)"),
                    });
                }
                return;
            }
        };
        let (Some(net), Some(TransportSlice::Tcp(tcp))) = (&sliced.net, &sliced.transport) else {
            return;
        };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match net {
            NetSlice::Ipv4(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            NetSlice::Ipv6(ip) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            NetSlice::Arp(_) => return,
        };
        let src = SocketAddr::new(src_ip, tcp.source_port());
        let dst = SocketAddr::new(dst_ip, tcp.destination_port());
        let key = if src <= dst { (src, dst) } else { (dst, src) };
        let opening = tcp.syn() && !tcp.ack();
        if opening && self.by_ends.get(&key).is_some_and(|stream| stream.data) {
            // The ports are used again for a new connection.
            if let Some(old) = self.by_ends.remove(&key) {
                self.close(old);
            }
        }
        let count = &mut self.count;
        let stream = self.by_ends.entry(key).or_insert_with(|| {
            let index = *count;
            *count += 1;
            // The SYN's sender is the client; without a SYN, the first packet's sender.
            let (client, server) = if tcp.syn() && tcp.ack() {
                (dst, src)
            } else {
                (src, dst)
            };
            Stream {
                index,
                client,
                server,
                to_server: Direction::default(),
                to_client: Direction::default(),
                data: false,
            }
        });
        let way = if src == stream.client {
            Way::ToServer
        } else {
            Way::ToClient
        };
        stream.data |= !tcp.payload().is_empty();
        let place = |offset| Place {
            stream: stream.index,
            frame,
            way,
            src,
            dst,
            offset,
        };
        let direction = match way {
            Way::ToServer => &mut stream.to_server,
            Way::ToClient => &mut stream.to_client,
        };
        if direction.dead {
            return;
        }
        let cut = direction
            .segment(tcp.sequence_number(), tcp.syn(), tcp.payload())
            .and_then(|()| direction.pdus());
        match cut {
            Ok(pdus) => {
                for (offset, pdu) in pdus {
                    self.events.push(Event::Pdu(place(offset), pdu));
                }
            }
            Err(message) => {
                direction.dead = true;
                self.events.push(Event::Error {
                    stream: Some(stream.index),
                    frame: Some(frame),
                    message: format!("stream {}, {src} -> {dst}: {message}", stream.index),
                });
            }
        }
    }

    /// Reports what a stream leaves unfinished.
    fn close(&mut self, stream: Stream) {
        for (way, direction) in [
            (Way::ToServer, stream.to_server),
            (Way::ToClient, stream.to_client),
        ] {
            if direction.dead || (direction.buf.is_empty() && direction.ahead.is_empty()) {
                continue;
            }
            let (src, dst) = match way {
                Way::ToServer => (stream.client, stream.server),
                Way::ToClient => (stream.server, stream.client),
            };
            let message = if direction.ahead.is_empty() {
                format!(
                    "stream {}, {src} -> {dst}: the capture ends inside a PDU ({} bytes of it)",
                    stream.index,
                    direction.buf.remaining()
                )
            } else {
                format!(
                    "stream {}, {src} -> {dst}: segments missing from the capture; {} bytes after the gap not decoded",
                    stream.index, direction.held
                )
            };
            self.events.push(Event::Error {
                stream: Some(stream.index),
                frame: None,
                message,
            });
        }
    }

    /// The events, with what every stream leaves unfinished at the end.
    fn finish(mut self) -> Vec<Event> {
        let mut open: Vec<Stream> = self.by_ends.drain().map(|(_, stream)| stream).collect();
        open.sort_by_key(|stream| stream.index);
        for stream in open {
            self.close(stream);
        }
        self.events
    }
}

#[cfg(test)]
mod tests {
    use etherparse::{LinuxSllPacketType, PacketBuilder};

    use super::*;

    const BIND: &[u8] = include_bytes!("../../../../fixtures/pdu/bind-multi-context.bin");
    const REQUEST: &[u8] =
        include_bytes!("../../../../fixtures/pdu/impacket-request-ept_lookup.bin");
    const BIND_NAK: &[u8] = include_bytes!("../../../../fixtures/pdu/samba-bind_nak.bin");

    /// A legacy pcap file (little-endian, microseconds) of `linktype` holding `packets`.
    fn pcap(linktype: u32, packets: &[Vec<u8>]) -> Vec<u8> {
        let mut file = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&65535_u32.to_le_bytes());
        file.extend_from_slice(&linktype.to_le_bytes());
        for (index, packet) in packets.iter().enumerate() {
            let len = u32::try_from(packet.len()).unwrap();
            file.extend_from_slice(&u32::try_from(index).unwrap().to_le_bytes());
            file.extend_from_slice(&0_u32.to_le_bytes());
            file.extend_from_slice(&len.to_le_bytes());
            file.extend_from_slice(&len.to_le_bytes());
            file.extend_from_slice(packet);
        }
        file
    }

    /// A TCP segment over IPv6 behind a BSD loopback header (address family 24).
    fn loopback6(from: u16, to: u16, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let mut packet = 24_u32.to_le_bytes().to_vec();
        let local = std::net::Ipv6Addr::LOCALHOST.octets();
        let builder = PacketBuilder::ipv6(local, local, 64).tcp(from, to, seq, 65535);
        let builder = if syn { builder.syn() } else { builder.ack(1) };
        builder.write(&mut packet, payload).unwrap();
        packet
    }

    /// A TCP segment over IPv4 behind a Linux cooked header; the server (port 135) is
    /// 192.0.2.2, the clients 192.0.2.1 (documentation addresses).
    fn cooked4(from: u16, to: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let (client, server) = ([192, 0, 2, 1], [192, 0, 2, 2]);
        let (src, dst) = if from == 135 {
            (server, client)
        } else {
            (client, server)
        };
        let mut packet = Vec::new();
        PacketBuilder::linux_sll(LinuxSllPacketType::HOST, 6, [0; 8])
            .ipv4(src, dst, 64)
            .tcp(from, to, seq, 65535)
            .ack(1)
            .write(&mut packet, payload)
            .unwrap();
        packet
    }

    fn pdus(events: &[Event]) -> Vec<(usize, u64, Way, &[u8])> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Pdu(place, bytes) => {
                    Some((place.stream, place.frame, place.way, &bytes[..]))
                }
                Event::Error { .. } => None,
            })
            .collect()
    }

    fn errors(events: &[Event]) -> Vec<(Option<usize>, Option<u64>, &str)> {
        events
            .iter()
            .filter_map(|event| match event {
                Event::Pdu(..) => None,
                Event::Error {
                    stream,
                    frame,
                    message,
                } => Some((*stream, *frame, message.as_str())),
            })
            .collect()
    }

    #[test]
    fn out_of_order_and_retransmitted_segments_are_put_in_order() {
        let client = [BIND, REQUEST].concat();
        let (a, rest) = client.split_at(30);
        let (b, c) = rest.split_at(BIND.len());
        let seq = 1001_u32;
        let b_seq = seq + 30;
        let c_seq = b_seq + u32::try_from(b.len()).unwrap();
        let file = pcap(
            0,
            &[
                loopback6(50000, 135, 1000, true, &[]),
                // The second segment first: held.
                loopback6(50000, 135, b_seq, false, b),
                // The first: both now in order; the bind is whole (frame 3).
                loopback6(50000, 135, seq, false, a),
                // Retransmissions: the first again, then one that overlaps old and new bytes.
                loopback6(50000, 135, seq, false, a),
                loopback6(
                    50000,
                    135,
                    c_seq - 10,
                    false,
                    &client[client.len() - c.len() - 10..],
                ),
                loopback6(135, 50000, 7000, false, BIND_NAK),
            ],
        );
        assert!(is_capture(&file));
        let events = read(&file);
        assert_eq!(errors(&events), []);
        assert_eq!(
            pdus(&events),
            [
                (0, 3, Way::ToServer, BIND),
                (0, 5, Way::ToServer, REQUEST),
                (0, 6, Way::ToClient, BIND_NAK),
            ]
        );
        let Some(Event::Pdu(place, _)) = events.get(1) else {
            panic!("{events:?}")
        };
        assert_eq!(place.src.to_string(), "[::1]:50000");
        assert_eq!(place.offset, u64::try_from(BIND.len()).unwrap());
    }

    #[test]
    fn streams_are_told_apart_and_bad_ones_reported_without_stopping() {
        let file = pcap(
            113,
            &[
                cooked4(40000, 135, 1, b"GET / HTTP/1.1\r\n\r\n"),
                cooked4(40001, 135, 1, BIND),
                // A segment lost: the rest of this direction waits for it.
                cooked4(40002, 135, 1, &REQUEST[..20]),
                cooked4(40002, 135, 41, &REQUEST[40..]),
                cooked4(40000, 135, 19, BIND),
                cooked4(135, 40001, 1, BIND_NAK),
            ],
        );
        let events = read(&file);
        assert_eq!(
            pdus(&events),
            [(1, 2, Way::ToServer, BIND), (1, 6, Way::ToClient, BIND_NAK)]
        );
        let errors = errors(&events);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].0, errors[0].1), (Some(0), Some(1)));
        assert!(
            errors[0]
                .2
                .starts_with("stream 0, 192.0.2.1:40000 -> 192.0.2.2:135: not DCE/RPC"),
            "{}",
            errors[0].2
        );
        assert_eq!((errors[1].0, errors[1].1), (Some(2), None));
        assert!(errors[1].2.contains("segments missing"), "{}", errors[1].2);
    }

    #[test]
    fn damaged_files_end_with_an_error_not_a_panic() {
        let file = pcap(1, &[vec![0; 10]]);
        assert_eq!(read(&file).len(), 1);
        let mut truncated = pcap(0, &[loopback6(1, 2, 1, false, BIND)]);
        truncated.truncate(truncated.len() - 5);
        let events = read(&truncated);
        let errors = errors(&events);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].2.contains("unreadable from packet 1"),
            "{}",
            errors[0].2
        );
        assert!(!is_capture(b"\x05\x00\x0b\x03"));
    }
}
