//! Reading an FTP session out of a packet capture (pcap or pcapng).
//!
//! 1. Packets are decoded down to TCP (Ethernet, Linux cooked v1/v2, BSD
//!    loopback, raw IP).
//! 2. Each direction of each TCP connection is reassembled by sequence
//!    number; a hole that is never filled is an error for a control
//!    connection ("the capture misses packets"), and makes a data
//!    connection's bytes unknown (its size is still used).
//! 3. Control connections are the ones whose server speaks first with a
//!    three-digit reply; their commands and replies are paired in order
//!    (a command owns the replies up to its final, non-1yz, one).
//! 4. Data connections are matched to the PASV/EPSV reply or PORT/EPRT
//!    command that announced their port, in order.
//!
//! A session that went to TLS (`AUTH TLS` answered `234`, or TLS from the
//! first byte) cannot be replayed: that is reported, never guessed at.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use anyhow::{Result, anyhow, bail};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::{PcapBlockOwned, PcapError};

use crate::replay::{DataCapture, Exchange, Session};
use crate::scenario::{Direction, is_transfer_command};

/// One TCP segment with payload (or flags), in capture order.
struct Segment {
    index: usize,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    syn: bool,
    ack: bool,
    fin_or_rst: bool,
    payload: Vec<u8>,
}

/// Decode every packet of a pcap/pcapng file into TCP segments.
fn segments(bytes: &[u8]) -> Result<Vec<Segment>> {
    let mut reader = pcap_parser::create_reader(1 << 20, bytes).map_err(|e| {
        anyhow!(
            "not a pcap or pcapng file ({e:?}): give a capture written by tcpdump -w or Wireshark"
        )
    })?;
    let mut linktypes: Vec<i32> = Vec::new(); // pcapng: per interface
    let mut legacy_linktype = None;
    let mut out = Vec::new();
    let mut index = 0usize;
    let mut truncated = 0usize;
    for _ in 0..50_000_000u64 {
        match reader.next() {
            Ok((offset, block)) => {
                let pkt: Option<(i32, &[u8], u32, u32)> = match block {
                    PcapBlockOwned::LegacyHeader(h) => {
                        legacy_linktype = Some(h.network.0);
                        None
                    }
                    PcapBlockOwned::Legacy(b) => {
                        Some((legacy_linktype.unwrap_or(1), b.data, b.caplen, b.origlen))
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::InterfaceDescription(idb)) => {
                        linktypes.push(idb.linktype.0);
                        None
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::EnhancedPacket(epb)) => {
                        let lt = linktypes.get(epb.if_id as usize).copied().unwrap_or(1);
                        Some((lt, epb.data, epb.caplen, epb.origlen))
                    }
                    PcapBlockOwned::NG(pcap_parser::Block::SimplePacket(spb)) => Some((
                        linktypes.first().copied().unwrap_or(1),
                        spb.data,
                        spb.origlen,
                        spb.origlen,
                    )),
                    PcapBlockOwned::NG(_) => None,
                };
                if let Some((lt, data, caplen, origlen)) = pkt {
                    let data = &data[..(caplen as usize).min(data.len())];
                    if caplen < origlen {
                        truncated += 1;
                    }
                    if let Some(s) = decode(lt, data, index) {
                        out.push(s);
                    }
                    index += 1;
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    bail!(
                        "the capture is damaged: its last block is cut short (after {index} packets)"
                    );
                }
                // A refill that brings nothing new means the file ends inside a block.
                match reader.next() {
                    Err(PcapError::Incomplete(_)) => bail!(
                        "the capture is damaged: it ends in the middle of a packet (after {index} packets)"
                    ),
                    Err(PcapError::Eof) => break,
                    Err(PcapError::UnexpectedEof) => bail!(
                        "the capture is damaged: it ends in the middle of a packet (after {index} packets)"
                    ),
                    Ok((offset, _)) => {
                        // Re-read it properly on the next turn.
                        let _ = offset;
                        continue;
                    }
                    Err(e) => bail!("the capture is damaged after {index} packets: {e:?}"),
                }
            }
            Err(PcapError::UnexpectedEof) => bail!(
                "the capture is damaged: it ends in the middle of a packet (after {index} packets)"
            ),
            Err(e) => bail!("the capture is damaged after {index} packets: {e:?}"),
        }
    }
    if truncated > 0 {
        bail!(
            "{truncated} packets were cut short by the capture's snap length: capture again with `tcpdump -s 0`"
        );
    }
    Ok(out)
}

fn decode(linktype: i32, data: &[u8], index: usize) -> Option<Segment> {
    let p = match linktype {
        1 => SlicedPacket::from_ethernet(data).ok()?,
        113 => SlicedPacket::from_linux_sll(data).ok()?,
        276 => SlicedPacket::from_ip(data.get(20..)?).ok()?, // Linux cooked v2: 20-byte header
        0 | 108 => SlicedPacket::from_ip(data.get(4..)?).ok()?, // BSD loopback: address family
        101 | 12 | 14 | 228 | 229 => SlicedPacket::from_ip(data).ok()?,
        _ => return None,
    };
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match p.net? {
        NetSlice::Ipv4(v4) => (
            v4.header().source_addr().into(),
            v4.header().destination_addr().into(),
        ),
        NetSlice::Ipv6(v6) => (
            v6.header().source_addr().into(),
            v6.header().destination_addr().into(),
        ),
        _ => return None,
    };
    let TransportSlice::Tcp(tcp) = p.transport? else {
        return None;
    };
    Some(Segment {
        index,
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin_or_rst: tcp.fin() || tcp.rst(),
        payload: tcp.payload().to_vec(),
    })
}

/// One direction of a TCP connection, reassembled.
#[derive(Default)]
struct Stream {
    /// (capture index at which these bytes became contiguous, bytes)
    chunks: Vec<(usize, Vec<u8>)>,
    /// Bytes missing (holes never filled).
    missing: u64,
    first_missing_at: Option<u64>,
    first_index: usize,
    syn_from_here: bool,
    total: u64,
}

impl Stream {
    fn bytes(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }
}

/// Reassemble every direction of every connection.
fn reassemble(segs: &[Segment]) -> HashMap<(SocketAddr, SocketAddr), Stream> {
    struct State {
        isn: Option<u32>,
        next: u64,
        pending: BTreeMap<u64, (usize, Vec<u8>)>,
        stream: Stream,
    }
    let mut states: HashMap<(SocketAddr, SocketAddr), State> = HashMap::new();
    for s in segs {
        let st = states.entry((s.src, s.dst)).or_insert_with(|| State {
            isn: None,
            next: 0,
            pending: BTreeMap::new(),
            stream: Stream {
                first_index: s.index,
                ..Stream::default()
            },
        });
        if s.syn {
            st.isn = Some(s.seq);
            st.next = 1;
            st.stream.syn_from_here = !s.ack;
            continue;
        }
        if s.payload.is_empty() {
            continue;
        }
        let isn = *st.isn.get_or_insert(s.seq.wrapping_sub(1));
        if st.next == 0 {
            st.next = 1;
        }
        let rel = u64::from(s.seq.wrapping_sub(isn));
        st.pending
            .entry(rel)
            .or_insert((s.index, s.payload.clone()));
        // Drain what is now contiguous.
        while let Some((&at, _)) = st.pending.first_key_value() {
            if at > st.next {
                break;
            }
            let (idx, data) = st.pending.pop_first().unwrap().1;
            let end = at + data.len() as u64;
            if end > st.next {
                let fresh = data[(st.next - at) as usize..].to_vec();
                st.stream.total += fresh.len() as u64;
                st.stream.chunks.push((idx, fresh));
                st.next = end;
            }
        }
        let _ = s.fin_or_rst;
    }
    states
        .into_iter()
        .map(|(k, mut st)| {
            // Whatever is still pending sits beyond a hole.
            let mut next = st.next;
            for (at, (idx, data)) in std::mem::take(&mut st.pending) {
                if at > next {
                    st.stream.missing += at - next;
                    st.stream.first_missing_at.get_or_insert(next - 1);
                }
                let end = at + data.len() as u64;
                if end > next {
                    st.stream.total += end - next.max(at);
                    let _ = idx;
                    next = end;
                }
            }
            (k, st.stream)
        })
        .collect()
}

/// A reply or command line with the capture index where it completed.
struct Line {
    index: usize,
    text: String,
}

fn lines(stream: &Stream) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (idx, chunk) in &stream.chunks {
        for &b in chunk {
            if b == b'\n' {
                if cur.last() == Some(&b'\r') {
                    cur.pop();
                }
                out.push(Line {
                    index: *idx,
                    text: String::from_utf8_lossy(&cur).into_owned(),
                });
                cur.clear();
            } else {
                cur.push(b);
            }
        }
    }
    out
}

fn looks_like_reply(b: &[u8]) -> bool {
    b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && (b[3] == b' ' || b[3] == b'-')
}

fn looks_like_tls(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == 0x16 && b[1] == 0x03
}

/// Turn a capture into a session to replay.
pub fn session_from_pcap(bytes: &[u8], name: &str) -> Result<Session> {
    let segs = segments(bytes)?;
    if segs.is_empty() {
        bail!("no TCP packets in the capture");
    }
    let streams = reassemble(&segs);
    // Control connections: (client, server) where server->client starts with a reply.
    let mut controls: Vec<(SocketAddr, SocketAddr, usize)> = Vec::new();
    let mut tls = Vec::new();
    for ((src, dst), st) in &streams {
        let head: Vec<u8> = st.bytes().into_iter().take(8).collect();
        if looks_like_reply(&head) {
            controls.push((*dst, *src, st.first_index));
        } else if looks_like_tls(&head) && !st.syn_from_here {
            // Server side of a TLS handshake.
        } else if looks_like_tls(&head) {
            tls.push(*dst);
        }
    }
    controls.sort_by_key(|c| c.2);
    if controls.is_empty() {
        if let Some(d) = tls.first() {
            bail!(
                "the capture holds a TLS session (to {d}: implicit FTPS), whose commands are encrypted: it cannot be replayed. Capture a session without TLS"
            );
        }
        bail!(
            "no FTP control connection in the capture (no server greeting such as `220 ...` was found)"
        );
    }
    let mut exchanges: Vec<(usize, Exchange)> = Vec::new();
    let mut used_data: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    for (conn_no, (client, server, _)) in controls.iter().enumerate() {
        let up = streams.get(&(*client, *server));
        let down = &streams[&(*server, *client)];
        for (what, st) in [("server", Some(down)), ("client", up)] {
            if let Some(st) = st {
                if st.missing > 0 {
                    bail!(
                        "the capture misses {} bytes of the control connection {client} -> {server} ({what} side, after byte {}): packets were dropped; capture again (tcpdump -s 0 -B 4096)",
                        st.missing,
                        st.first_missing_at.unwrap_or(0)
                    );
                }
            }
        }
        let commands = up.map(lines).unwrap_or_default();
        let replies = lines(down);
        let conn_exchanges = pair(conn_no, &commands, &replies)?;
        for ex in conn_exchanges {
            exchanges.push(ex);
        }
        // Data connections announced on this control connection.
        attach_data(
            &mut exchanges,
            conn_no,
            *client,
            *server,
            &streams,
            &mut used_data,
        );
    }
    exchanges.sort_by_key(|(idx, _)| *idx);
    let exchanges: Vec<Exchange> = exchanges.into_iter().map(|(_, e)| e).collect();
    for e in &exchanges {
        if let Some(cmd) = &e.command {
            let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
            if verb == "AUTH" && e.replies.iter().any(|r| r.0 == 234) {
                bail!(
                    "the session switched to TLS (`{cmd}` was answered 234): everything after it is encrypted and cannot be replayed. Capture a session without TLS"
                );
            }
        }
    }
    Ok(Session {
        name: name.to_string(),
        exchanges,
        connections: controls.len(),
    })
}

/// Pair commands and replies of one control connection in order: each
/// command owns the replies up to its final (non-1yz) one; replies before the
/// first command are the greeting.
fn pair(conn: usize, commands: &[Line], replies: &[Line]) -> Result<Vec<(usize, Exchange)>> {
    // Group reply lines into replies.
    let mut grouped: Vec<(usize, u16, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < replies.len() {
        let first = &replies[i];
        let b = first.text.as_bytes();
        let code: u16 = if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
            first.text[..3].parse().unwrap_or(0)
        } else {
            0
        };
        let mut lines = vec![first.text.clone()];
        let mut last = first.index;
        i += 1;
        if b.get(3) == Some(&b'-') {
            let end = format!("{code} ");
            while i < replies.len() {
                let l = &replies[i];
                lines.push(l.text.clone());
                last = l.index;
                i += 1;
                if l.text.starts_with(&end) {
                    break;
                }
            }
        }
        grouped.push((last, code, lines));
    }
    let mut out: Vec<(usize, Exchange)> = vec![(
        0,
        Exchange {
            conn,
            command: None,
            replies: vec![],
            data: None,
        },
    )];
    let mut queue: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
    queue.push_back(0); // the greeting
    let (mut ci, mut ri) = (0, 0);
    while ci < commands.len() || ri < grouped.len() {
        let take_command = match (commands.get(ci), grouped.get(ri)) {
            (Some(c), Some(r)) => c.index < r.0 || (c.index == r.0 && queue.is_empty()),
            (Some(_), None) => true,
            _ => false,
        };
        if take_command {
            let c = &commands[ci];
            ci += 1;
            if c.text.is_empty() {
                continue;
            }
            out.push((
                c.index,
                Exchange {
                    conn,
                    command: Some(c.text.clone()),
                    replies: vec![],
                    data: None,
                },
            ));
            queue.push_back(out.len() - 1);
        } else {
            let (_, code, lines) = grouped[ri].clone();
            ri += 1;
            let owner = queue.front().copied().unwrap_or(out.len() - 1);
            out[owner].1.replies.push((code, lines));
            if !(100..200).contains(&code) {
                queue.pop_front();
            }
        }
    }
    if out[0].1.replies.is_empty() {
        out.remove(0);
    } else {
        // The greeting sorts where it arrived, so that connections open in
        // the order the client opened them.
        out[0].0 = grouped.first().map_or(0, |g| {
            replies
                .iter()
                .find(|l| l.index <= g.0)
                .map_or(g.0, |l| l.index)
        });
    }
    Ok(out)
}

/// Find the data connection of every transfer on one control connection.
fn attach_data(
    exchanges: &mut [(usize, Exchange)],
    conn: usize,
    client: SocketAddr,
    server: SocketAddr,
    streams: &HashMap<(SocketAddr, SocketAddr), Stream>,
    used: &mut Vec<(SocketAddr, SocketAddr)>,
) {
    // The endpoint announced most recently: (passive?, port, from index).
    let mut announced: Option<(bool, u16, usize)> = None;
    for (idx, ex) in exchanges.iter_mut().filter(|(_, e)| e.conn == conn) {
        let Some(cmd) = ex.command.clone() else {
            continue;
        };
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        let arg = cmd.get(verb.len() + 1..).unwrap_or("").trim().to_string();
        let code = ex.replies.first().map_or(0, |r| r.0);
        match verb.as_str() {
            "PASV" if code == 227 => {
                announced = crate::client::parse_pasv(ex.replies[0].1[0].get(4..).unwrap_or(""))
                    .map(|a| (true, a.port(), *idx));
            }
            "EPSV" if code == 229 => {
                announced = crate::client::parse_epsv(ex.replies[0].1[0].get(4..).unwrap_or(""))
                    .map(|p| (true, p, *idx));
            }
            "PORT" if code / 100 == 2 => {
                announced = crate::client::parse_pasv(&arg).map(|a| (false, a.port(), *idx));
            }
            "EPRT" if code / 100 == 2 => {
                let parts: Vec<&str> = arg.split(arg.chars().next().unwrap_or('|')).collect();
                announced = parts
                    .get(3)
                    .and_then(|p| p.parse().ok())
                    .map(|p| (false, p, *idx));
            }
            _ => {}
        }
        let Some(dir) = is_transfer_command(&verb) else {
            continue;
        };
        let Some((passive, port, from)) = announced.take() else {
            continue;
        };
        if !ex.replies.iter().any(|r| (100..200).contains(&r.0)) {
            continue;
        }
        // The data connection: one end is `port` on the server (passive) or
        // on the client (active), first seen after the announcement.
        let found = streams
            .iter()
            .filter(|((s, d), st)| {
                st.first_index >= from
                    && !used.contains(&(*s, *d))
                    && if passive {
                        (s.port() == port && s.ip() == server.ip())
                            || (d.port() == port && d.ip() == server.ip())
                    } else {
                        (s.port() == port && s.ip() == client.ip())
                            || (d.port() == port && d.ip() == client.ip())
                    }
            })
            .min_by_key(|(_, st)| st.first_index)
            .map(|(k, _)| *k);
        let Some((a, b)) = found else {
            ex.data = Some(DataCapture {
                dir,
                bytes: None,
                len: None,
            });
            continue;
        };
        used.push((a, b));
        used.push((b, a));
        // Download: bytes from the FTP server's end, i.e. away from the
        // client's data endpoint.
        let client_end = |x: &SocketAddr| {
            if passive {
                !(x.port() == port && x.ip() == server.ip())
            } else {
                x.port() == port && x.ip() == client.ip()
            }
        };
        let key = match dir {
            Direction::Download => {
                if client_end(&a) {
                    (b, a)
                } else {
                    (a, b)
                }
            }
            Direction::Upload => {
                if client_end(&a) {
                    (a, b)
                } else {
                    (b, a)
                }
            }
        };
        ex.data = Some(match streams.get(&key) {
            Some(st) if st.missing == 0 => DataCapture {
                dir,
                bytes: Some(st.bytes()),
                len: Some(st.total),
            },
            Some(st) => DataCapture {
                dir,
                bytes: None,
                len: Some(st.total + st.missing),
            },
            None => DataCapture {
                dir,
                bytes: Some(vec![]),
                len: Some(0),
            },
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const CLIENT: u16 = 40000;
    const SERVER: u16 = 2121;

    /// A legacy pcap file of Ethernet frames.
    fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [
            0xa1b2_c3d4u32.to_le_bytes().to_vec(),
            2u16.to_le_bytes().to_vec(),
            4u16.to_le_bytes().to_vec(),
            vec![0; 8],
            65535u32.to_le_bytes().to_vec(),
            1u32.to_le_bytes().to_vec(),
        ] {
            out.extend(v);
        }
        for (i, f) in frames.iter().enumerate() {
            out.extend((i as u32).to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend((f.len() as u32).to_le_bytes());
            out.extend((f.len() as u32).to_le_bytes());
            out.extend(f);
        }
        out
    }

    /// A TCP segment; `to_server` picks the direction.
    fn seg(to_server: bool, seq: u32, syn: bool, payload: &[u8]) -> Vec<u8> {
        let (s, d) = if to_server {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let mut b = PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4([127, 0, 0, 1], [127, 0, 0, 1], 64)
            .tcp(s, d, seq, 1024);
        if syn {
            b = b.syn();
        }
        if !syn || !to_server {
            b = b.ack(1);
        }
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    /// Handshake, then each (to_server, text) in order with correct seqs.
    fn session(lines: &[(bool, &str)], skip: Option<usize>) -> Vec<u8> {
        let mut frames = vec![seg(true, 1000, true, b""), seg(false, 5000, true, b"")];
        let (mut cs, mut ss) = (1001u32, 5001u32);
        for (i, (up, text)) in lines.iter().enumerate() {
            let seq = if *up { &mut cs } else { &mut ss };
            if skip != Some(i) {
                frames.push(seg(*up, *seq, false, text.as_bytes()));
            }
            *seq += text.len() as u32;
        }
        pcap(&frames)
    }

    #[test]
    fn control_connection_is_reassembled_and_paired() {
        let p = session(
            &[
                (false, "220 hi\r\n"),
                (true, "USER test\r\n"),
                (false, "331 pw\r\n"),
                (true, "PASS test\r\n"),
                (false, "230-Welcome\r\n230 in\r\n"),
                (true, "QUIT\r\n"),
                (false, "221 bye\r\n"),
            ],
            None,
        );
        let s = session_from_pcap(&p, "t").unwrap();
        assert_eq!(s.connections, 1);
        let cmds: Vec<_> = s.exchanges.iter().map(|e| e.command.clone()).collect();
        assert_eq!(
            cmds,
            [
                None,
                Some("USER test".into()),
                Some("PASS test".into()),
                Some("QUIT".into())
            ]
        );
        assert_eq!(
            s.exchanges[2].replies,
            vec![(230, vec!["230-Welcome".to_string(), "230 in".to_string()])]
        );
    }

    #[test]
    fn missing_packets_are_a_clear_error() {
        let p = session(
            &[
                (false, "220 hi\r\n"),
                (true, "USER test\r\n"),
                (false, "331 pw\r\n"),
                (true, "PASS test\r\n"),
                (false, "230 in\r\n"),
            ],
            Some(2),
        );
        let e = session_from_pcap(&p, "t").unwrap_err().to_string();
        assert!(
            e.contains("misses 8 bytes of the control connection"),
            "{e}"
        );
    }

    #[test]
    fn tls_is_a_clear_error() {
        let p = session(
            &[
                (false, "220 hi\r\n"),
                (true, "AUTH TLS\r\n"),
                (false, "234 go\r\n"),
                (true, "\x16\x03\x01binary"),
            ],
            None,
        );
        let e = session_from_pcap(&p, "t").unwrap_err().to_string();
        assert!(e.contains("switched to TLS"), "{e}");
        // Implicit FTPS: TLS from the first byte.
        let frames = vec![
            seg(true, 1000, true, b""),
            seg(false, 5000, true, b""),
            seg(true, 1001, false, b"\x16\x03\x01\x02\x00hello"),
        ];
        let e = session_from_pcap(&pcap(&frames), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("TLS"), "{e}");
    }

    #[test]
    fn damaged_files_are_clear_errors() {
        let p = session(&[(false, "220 hi\r\n"), (true, "USER test\r\n")], None);
        let e = session_from_pcap(&p[..p.len() - 5], "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("damaged"), "{e}");
        let e = session_from_pcap(b"\xd4\xc3\xb2\xa1garbage", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pcap") || e.contains("damaged"), "{e}");
        let mut truncated = p.clone();
        // Claim an original length larger than what was captured.
        let rec =
            24 + 16 + seg(true, 1000, true, b"").len() + 16 + seg(false, 5000, true, b"").len();
        truncated[rec + 12..rec + 16].copy_from_slice(&9999u32.to_le_bytes());
        let e = session_from_pcap(&truncated, "t").unwrap_err().to_string();
        assert!(e.contains("snap length"), "{e}");
    }
}
