//! The [`Net`] contract of [`SmolNet`], exercised against a second smoltcp
//! stack over an in-memory cable. Time is simulated: one step is 1 ms.

use std::cell::RefCell;
use std::rc::Rc;
use std::vec::Vec;

use super::*;
use crate::testing::{BOARD, End, Peer, Wire, addr, leak, wire};

const K: usize = 8;

struct Rig {
    net: SmolNet<'static, K>,
    board: End,
    peer: Peer,
    wire: Rc<RefCell<Wire>>,
    now: u64,
}

impl Rig {
    fn new(control: usize, data: usize) -> Rig {
        let (mut board, peer_end, wire) = wire();
        let iface = crate::app::interface(&BOARD, &mut board, 0);
        let storage = Vec::from_iter((0..K).map(|_| SocketStorage::EMPTY)).leak();
        let mut net = SmolNet::new(iface, storage, 21);
        for _ in 0..control {
            net.add_control(leak(512), leak(1024));
        }
        for _ in 0..data {
            net.add_data(leak(2048), leak(2048));
        }
        Rig {
            net,
            board,
            peer: Peer::new(peer_end),
            wire,
            now: 0,
        }
    }

    /// One millisecond of both stacks running.
    fn step(&mut self) {
        self.now += 1;
        self.net.poll_iface(self.now, &mut self.board);
        self.net.maintain(self.now);
        self.peer.poll(self.now);
        self.net.poll_iface(self.now, &mut self.board);
    }

    /// Steps until `f` holds, at most 5 simulated seconds (enough for one
    /// retransmission timeout).
    #[track_caller]
    fn until(&mut self, what: &str, mut f: impl FnMut(&mut Rig) -> bool) {
        for _ in 0..5000 {
            if f(self) {
                return;
            }
            self.step();
        }
        panic!("never happened: {what}");
    }

    /// Lets traffic settle for `ms` simulated milliseconds.
    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.step();
        }
    }

    /// Moves the clock on by `ms` in 100 ms strides (timers fire on the way).
    fn advance(&mut self, ms: u64) {
        for _ in 0..ms / 100 {
            self.now += 99;
            self.step();
        }
    }

    /// A client connection to the control port, accepted by the engine.
    #[track_caller]
    fn accepted(&mut self, to: &str) -> (SocketHandle, Sock) {
        let c = self.peer.connect(addr(to));
        let mut s = None;
        self.until("accept", |r| {
            s = r.net.accept();
            s.is_some()
        });
        (c, s.unwrap())
    }

    /// An established data connection: board listener, peer connects.
    #[track_caller]
    fn data_pair(&mut self, port: u16) -> (SocketHandle, Sock) {
        let s = self.net.listen(addr(&format!("192.0.2.2:{port}"))).unwrap();
        let c = self.peer.connect(addr(&format!("192.0.2.2:{port}")));
        self.until("data connection", |r| {
            r.net.state(s) == SockState::Established
        });
        (c, s)
    }

    fn peek_all(&mut self, s: Sock) -> Result<Vec<u8>, NetError> {
        let mut buf = [0u8; 4096];
        let n = self.net.peek(s, &mut buf)?;
        Ok(buf[..n].to_vec())
    }
}

#[test]
fn accept_hands_out_each_established_control_connection_once() {
    let mut r = Rig::new(2, 1);
    assert_eq!(r.net.accept(), None);
    let (c, s) = r.accepted("192.0.2.2:21");
    assert_eq!(r.peer.state(c), tcp::State::Established);
    assert_eq!(r.net.state(s), SockState::Established);
    assert_eq!(r.net.local_addr(s), Some(addr("192.0.2.2:21")));
    let local = r.peer.tcp(c).local_endpoint().unwrap();
    assert_eq!(r.net.peer_addr(s), Some(SocketAddr::from(local)));
    assert_eq!(r.net.accept(), None, "one connection, one accept");
    assert_eq!(
        r.net.census(),
        Census {
            control_listening: 1,
            data_free: 1,
            owned: 1,
            closing: 0
        }
    );
}

#[test]
fn accept_over_ipv6() {
    let mut r = Rig::new(1, 1);
    let (_, s) = r.accepted("[2001:db8::2]:21");
    assert_eq!(r.net.local_addr(s), Some(addr("[2001:db8::2]:21")));
    assert_eq!(
        r.net.peer_addr(s).unwrap().ip(),
        addr("[2001:db8::1]:0").ip()
    );
}

#[test]
fn control_backlog_is_the_free_control_sockets_and_refills_after_close() {
    let mut r = Rig::new(2, 1);
    let (c1, s1) = r.accepted("192.0.2.2:21");
    let (_c2, _s2) = r.accepted("192.0.2.2:21");
    // No control socket listens now: the third client's SYN is dropped, not
    // answered with a reset; the client keeps trying.
    let c3 = r.peer.connect(addr("192.0.2.2:21"));
    r.run(300);
    assert_eq!(r.peer.state(c3), tcp::State::SynSent);
    assert_eq!(r.net.accept(), None);

    // The engine closes the first session: once the client has acknowledged
    // our FIN, the socket listens again, without waiting for the client's
    // FIN, and the third client's next SYN gets it.
    r.net.close(s1);
    r.until("FIN at the client", |r| {
        r.peer.state(c1) == tcp::State::CloseWait
    });
    r.until("third client in", |r| {
        r.peer.state(c3) == tcp::State::Established
    });
    let s3 = r.net.accept().expect("the third client is accepted");
    assert_eq!(r.net.state(s3), SockState::Established);
    assert_eq!(r.net.census().closing, 0);
    // The first client closes late: it has read everything already.
    r.peer.tcp(c1).close();
    r.until("first client done", |r| {
        r.peer.state(c1) == tcp::State::Closed
    });
}

#[test]
fn a_socket_freed_by_one_frame_listens_for_the_syn_in_the_next() {
    let mut r = Rig::new(1, 1);
    let (c1, s1) = r.accepted("192.0.2.2:21");
    r.peer.tcp(c1).set_ack_delay(None);
    // The board says its last and closes; its FIN goes out.
    r.net.close(s1);
    r.now += 1;
    r.net.poll_iface(r.now, &mut r.board);
    // The client ACKs the FIN and, in the same burst of frames, a new
    // client sends its SYN: both reach the board in one poll.
    let c2 = r.peer.connect(addr("192.0.2.2:21"));
    r.peer.poll(r.now);
    assert_eq!(r.peer.state(c1), tcp::State::CloseWait);
    assert_eq!(r.wire.borrow().queued(0), 2, "the ACK and the SYN");
    r.now += 1;
    r.net.poll_iface(r.now, &mut r.board);
    r.peer.poll(r.now);
    assert_eq!(r.peer.state(c2), tcp::State::Established, "no reset");
    r.until("accept", |r| r.net.accept().is_some());
}

#[test]
fn client_that_resets_before_accept_does_not_leak_the_listener() {
    let mut r = Rig::new(1, 1);
    let c = r.peer.connect(addr("192.0.2.2:21"));
    r.until("connected", |r| r.peer.state(c) == tcp::State::Established);
    r.peer.tcp(c).abort();
    r.run(20);
    assert_eq!(r.net.accept(), None, "a reset connection is not handed out");
    assert_eq!(r.net.census().control_listening, 1);
    let (c2, _) = r.accepted("192.0.2.2:21");
    assert_eq!(r.peer.state(c2), tcp::State::Established);
}

#[test]
fn data_listener_takes_exactly_one_connection() {
    let mut r = Rig::new(1, 2);
    let s = r.net.listen(addr("192.0.2.2:50000")).unwrap();
    assert_eq!(r.net.state(s), SockState::Listening);
    assert_eq!(r.net.local_addr(s), Some(addr("192.0.2.2:50000")));
    assert_eq!(r.net.peer_addr(s), None);
    assert_eq!(
        r.peek_all(s),
        Ok(Vec::new()),
        "nothing to read while listening"
    );
    assert_eq!(r.net.send_capacity(s), 0);
    assert_eq!(r.net.send(s, b"x"), Ok(0));

    let c1 = r.peer.connect(addr("192.0.2.2:50000"));
    r.until("established", |r| r.net.state(s) == SockState::Established);
    let c1_local = r.peer.tcp(c1).local_endpoint().unwrap();
    assert_eq!(r.net.peer_addr(s), Some(SocketAddr::from(c1_local)));

    let c2 = r.peer.connect(addr("192.0.2.2:50000"));
    r.until("second client refused", |r| {
        r.peer.state(c2) == tcp::State::Closed
    });
    assert_eq!(r.peer.state(c1), tcp::State::Established);
}

#[test]
fn data_listener_over_ipv6_and_only_on_its_address() {
    let mut r = Rig::new(1, 2);
    let s = r.net.listen(addr("[2001:db8::2]:50001")).unwrap();
    // Same port on the IPv4 address: not this listener's.
    let c4 = r.peer.connect(addr("192.0.2.2:50001"));
    r.until("IPv4 refused", |r| r.peer.state(c4) == tcp::State::Closed);
    assert_eq!(r.net.state(s), SockState::Listening);
    let c6 = r.peer.connect(addr("[2001:db8::2]:50001"));
    r.until("IPv6 accepted", |r| {
        r.net.state(s) == SockState::Established
    });
    assert_eq!(r.peer.state(c6), tcp::State::Established);
}

#[test]
fn listen_errors() {
    let mut r = Rig::new(1, 2);
    assert_eq!(r.net.listen(addr("192.0.2.2:21")), Err(NetError::AddrInUse));
    assert_eq!(
        r.net.listen(addr("192.0.2.99:50000")),
        Err(NetError::Unreachable)
    );
    assert_eq!(
        r.net.listen(addr("192.0.2.2:0")),
        Err(NetError::Unreachable)
    );
    let a = r.net.listen(addr("192.0.2.2:50000")).unwrap();
    assert_eq!(
        r.net.listen(addr("192.0.2.2:50000")),
        Err(NetError::AddrInUse)
    );
    let _b = r.net.listen(addr("192.0.2.2:50001")).unwrap();
    assert_eq!(
        r.net.listen(addr("192.0.2.2:50002")),
        Err(NetError::Exhausted)
    );
    // A listener closed before anyone came is free at once.
    r.net.close(a);
    assert!(r.net.listen(addr("192.0.2.2:50000")).is_ok());
}

#[test]
fn active_connection_and_refusal() {
    let mut r = Rig::new(1, 2);
    let l = r.peer.listen(2000);
    let s = r
        .net
        .connect("192.0.2.2".parse().unwrap(), addr("192.0.2.1:2000"))
        .unwrap();
    assert_eq!(r.net.state(s), SockState::Connecting);
    assert_eq!(r.peek_all(s), Ok(Vec::new()));
    r.until("connected", |r| {
        r.net.state(s) == SockState::Established && r.peer.state(l) == tcp::State::Established
    });
    assert_eq!(r.net.peer_addr(s), Some(addr("192.0.2.1:2000")));
    let local = r.net.local_addr(s).unwrap();
    assert_eq!(local.ip(), addr("192.0.2.2:0").ip());
    assert!(local.port() >= EPHEMERAL_PORTS.0);

    // Nobody listens on 2001: RST, the connection is gone.
    let refused = r
        .net
        .connect("192.0.2.2".parse().unwrap(), addr("192.0.2.1:2001"))
        .unwrap();
    r.until("refused", |r| r.net.state(refused) == SockState::Closed);
    assert_eq!(r.peek_all(refused), Err(NetError::Reset));
}

#[test]
fn active_connection_over_ipv6_and_address_checks() {
    let mut r = Rig::new(1, 1);
    let board6 = "2001:db8::2".parse().unwrap();
    assert_eq!(
        r.net.connect(board6, addr("192.0.2.1:2000")),
        Err(NetError::Unreachable),
        "family mismatch"
    );
    assert_eq!(
        r.net
            .connect("192.0.2.7".parse().unwrap(), addr("192.0.2.1:2000")),
        Err(NetError::Unreachable),
        "not our address"
    );
    let l = r.peer.listen(2000);
    let s = r.net.connect(board6, addr("[2001:db8::1]:2000")).unwrap();
    r.until("connected", |r| {
        r.net.state(s) == SockState::Established && r.peer.state(l) == tcp::State::Established
    });
}

#[test]
fn peek_does_not_consume_and_consume_drops_exactly_n() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.accepted("192.0.2.2:21");
    r.peer.send(c, b"USER a\r\nPASS b\r\n");
    r.until("data", |r| r.peek_all(s).unwrap().len() == 16);
    assert_eq!(r.peek_all(s).unwrap(), b"USER a\r\nPASS b\r\n");
    r.net.consume(s, 8);
    assert_eq!(r.peek_all(s).unwrap(), b"PASS b\r\n");
    let mut four = [0u8; 4];
    assert_eq!(r.net.recv(s, &mut four), Ok(4));
    assert_eq!(&four, b"PASS");
    assert_eq!(r.net.recv(s, &mut four), Ok(4));
    assert_eq!(&four, b" b\r\n");
    assert_eq!(
        r.net.recv(s, &mut four),
        Ok(0),
        "nothing yet is not an error"
    );
}

#[test]
fn peek_and_consume_across_the_ring_buffer_wrap() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    let first: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
    r.peer.send(c, &first);
    r.until("first block", |r| r.peek_all(s).unwrap().len() == 1500);
    r.net.consume(s, 1500);
    // 1000 more bytes wrap around the end of the 2048-byte ring.
    let second: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    r.peer.send(c, &second);
    r.until("second block", |r| r.peek_all(s).unwrap().len() == 1000);
    assert_eq!(r.peek_all(s).unwrap(), second);
    r.net.consume(s, 1000);
    assert_eq!(r.peek_all(s).unwrap(), b"");
}

#[test]
fn fin_is_closed_after_the_data_and_the_socket_can_still_send() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    r.peer.send(c, b"last bytes");
    r.peer.tcp(c).close();
    r.until("peer closed", |r| r.net.state(s) == SockState::PeerClosed);
    assert_eq!(r.peek_all(s).unwrap(), b"last bytes", "buffered data first");
    r.net.consume(s, 10);
    assert_eq!(r.peek_all(s), Err(NetError::Closed));
    let mut buf = [0u8; 8];
    assert_eq!(r.net.recv(s, &mut buf), Err(NetError::Closed));
    assert_eq!(r.net.send(s, b"226 ok"), Ok(6));
    r.until("reply arrives", |r| r.peer.tcp(c).recv_queue() == 6);
    assert_eq!(r.peer.take_text(c), "226 ok");
}

#[test]
fn rst_is_reset() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    r.peer.tcp(c).abort();
    r.until("reset", |r| r.net.state(s) == SockState::Closed);
    assert_eq!(r.peek_all(s), Err(NetError::Reset));
    assert_eq!(r.net.send(s, b"x"), Err(NetError::Reset));
    assert_eq!(r.net.send_capacity(s), 0);
    r.net.abort(s);
    r.until("reclaimed", |r| r.net.census().data_free == 1);
}

#[test]
fn send_capacity_is_free_tx_space_and_drained_means_acknowledged() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    assert_eq!(r.net.send_capacity(s), 2048);
    assert!(r.net.send_drained(s));
    assert_eq!(r.net.send(s, &[b'a'; 100]), Ok(100));
    assert_eq!(r.net.send_capacity(s), 1948);
    assert!(!r.net.send_drained(s));
    r.until("acknowledged", |r| r.net.send_drained(s));
    assert_eq!(r.net.send_capacity(s), 2048);
    assert_eq!(r.peer.take_text(c).len(), 100);
    // More than fits: the socket takes what it has room for.
    assert_eq!(r.net.send(s, &[b'b'; 3000]), Ok(2048));
    assert_eq!(r.net.send_capacity(s), 0);
    assert_eq!(r.net.send(s, b"c"), Ok(0));
}

#[test]
fn close_sends_queued_data_then_fin_and_reclaims_when_tcp_is_done() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(r.net.send(s, &data), Ok(2000));
    r.net.close(s);
    // The handle is given back at once...
    assert_eq!(r.net.state(s), SockState::Closed);
    assert_eq!(r.net.send(s, b"x"), Err(NetError::Reset));
    // ...but the socket is not reusable while TCP still works on it.
    assert_eq!(r.net.census().closing, 1);
    assert_eq!(
        r.net.listen(addr("192.0.2.2:50001")),
        Err(NetError::Exhausted)
    );

    let mut got = Vec::new();
    r.until("all data and FIN", |r| {
        let sock = r.peer.tcp(c);
        while sock.can_recv() {
            sock.recv(|b| {
                got.extend_from_slice(b);
                (b.len(), ())
            })
            .unwrap();
        }
        sock.state() == tcp::State::CloseWait
    });
    assert_eq!(got, data);
    r.peer.tcp(c).close();
    r.until("reclaimed", |r| r.net.census().data_free == 1);
    assert!(r.net.listen(addr("192.0.2.2:50001")).is_ok());
}

#[test]
fn a_socket_still_sending_is_never_reused() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    r.wire.borrow_mut().down = true;
    assert_eq!(r.net.send(s, &[7; 1000]), Ok(1000));
    r.net.close(s);
    r.run(3000);
    assert_eq!(
        r.net.census().closing,
        1,
        "data unacknowledged: still closing"
    );
    assert_eq!(
        r.net.listen(addr("192.0.2.2:50001")),
        Err(NetError::Exhausted)
    );
    // The cable comes back before the linger limits: the data gets through.
    r.wire.borrow_mut().down = false;
    r.until("data and FIN delivered", |r| {
        r.peer.tcp(c).recv_queue() == 1000 && r.peer.state(c) == tcp::State::CloseWait
    });
    r.peer.tcp(c).close();
    r.until("reclaimed", |r| r.net.census().data_free == 1);
}

#[test]
fn a_silent_peer_gives_a_closing_socket_back_after_the_silence_limit() {
    let mut r = Rig::new(1, 1);
    let (_c, s) = r.data_pair(50000);
    r.wire.borrow_mut().down = true;
    assert_eq!(r.net.send(s, &[7; 1000]), Ok(1000));
    r.net.close(s);
    r.advance(LINGER_SILENCE_MS - 1000);
    assert_eq!(r.net.census().data_free, 0);
    r.advance(2000);
    assert_eq!(r.net.census().data_free, 1);
}

#[test]
fn a_peer_that_reads_too_slowly_gives_a_closing_socket_back_after_the_linger_limit() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    // Fill the peer's window and our TX buffer.
    r.until("window full", |r| {
        let n = r.net.send_capacity(s);
        if n > 0 {
            r.net.send(s, &vec![1; n]).unwrap();
        }
        r.net.send_capacity(s) == 0 && r.peer.tcp(c).recv_queue() == 8192
    });
    r.net.close(s);
    // The peer reads 100 bytes every 2 s: alive, never silent, never done.
    let trickle = |r: &mut Rig, ms: u64| {
        for _ in 0..ms / 2000 {
            r.advance(2000);
            r.peer.tcp(c).recv(|b| (b.len().min(100), ())).unwrap();
        }
    };
    trickle(&mut r, LINGER_MS - 2000);
    assert_eq!(r.net.census().closing, 1, "still delivering");
    assert_eq!(r.peer.state(c), tcp::State::Established);
    trickle(&mut r, 4000);
    assert_eq!(r.net.census().data_free, 1);
    r.run(10);
    assert_eq!(r.peer.state(c), tcp::State::Closed, "aborted with RST");
    assert!(
        r.net.poll_at(r.now).is_none_or(|t| t > r.now),
        "no busy wake-up left behind"
    );
}

#[test]
fn abort_sends_rst_and_frees_the_socket() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.data_pair(50000);
    r.net.send(s, b"partial").unwrap();
    r.net.abort(s);
    r.until("peer reset", |r| r.peer.state(c) == tcp::State::Closed);
    r.until("reclaimed", |r| r.net.census().data_free == 1);
}

#[test]
fn stale_handles_are_dead_and_slots_get_new_handles() {
    let mut r = Rig::new(1, 1);
    let a = r.net.listen(addr("192.0.2.2:50000")).unwrap();
    r.net.close(a);
    let b = r.net.listen(addr("192.0.2.2:50000")).unwrap();
    assert_ne!(a, b, "same slot, new generation");
    assert_eq!(r.net.state(a), SockState::Closed);
    assert_eq!(r.net.state(b), SockState::Listening);
    assert_eq!(r.net.local_addr(a), None);
    r.net.close(a); // no effect on b
    r.net.abort(a);
    assert_eq!(r.net.state(b), SockState::Listening);
    assert_eq!(r.peek_all(a), Err(NetError::Reset));
    assert!(r.net.send_drained(a));
}

#[test]
fn an_unroutable_active_connection_does_not_spin() {
    let mut r = Rig::new(1, 1);
    let s = r
        .net
        .connect("192.0.2.2".parse().unwrap(), addr("198.51.100.1:2000"))
        .unwrap();
    r.run(100);
    assert_eq!(r.net.state(s), SockState::Connecting);
    let wake = r.net.poll_at(r.now);
    assert!(wake.is_none_or(|t| t > r.now), "wake {wake:?} at {}", r.now);
    r.net.abort(s);
    r.until("reclaimed", |r| r.net.census().data_free == 1);
}

/// The TCP window field of the last frame the board sent the peer.
fn last_window_to_peer(w: &Wire) -> u16 {
    let f = w.frames(1).last().cloned().expect("a frame to the peer");
    assert_eq!(&f[12..14], &[0x08, 0x00], "IPv4");
    let tcp = &f[14 + usize::from(f[14] & 0x0f) * 4..];
    u16::from_be_bytes([tcp[14], tcp[15]])
}

#[test]
fn the_end_of_a_line_left_alone_leaves_the_window_wide_open() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.accepted("192.0.2.2:21");
    r.peer.send(c, b"NOOP\r\nNO");
    r.until("both pieces", |r| r.peek_all(s).is_ok_and(|d| d.len() == 8));
    // The engine takes the first line and answers: the reply carries a
    // window of the whole receive buffer, the line's end being kept aside.
    r.net.consume(s, 6);
    assert_eq!(r.peek_all(s).unwrap(), b"NO");
    assert_eq!(r.net.send(s, b"200 ok\r\n"), Ok(8));
    r.now += 1;
    r.net.poll_iface(r.now, &mut r.board);
    assert_eq!(last_window_to_peer(&r.wire.borrow()), 512);
    // The rest of the line joins the kept part.
    r.peer.send(c, b"OP\r\nPWD\r\n");
    r.until("the rest", |r| r.peek_all(s).is_ok_and(|d| d.len() == 11));
    assert_eq!(r.peek_all(s).unwrap(), b"NOOP\r\nPWD\r\n");
    // Consumed across the kept part and the socket's buffer.
    r.net.consume(s, 4);
    assert_eq!(r.peek_all(s).unwrap(), b"\r\nPWD\r\n");
    r.net.consume(s, 7);
    assert_eq!(r.peek_all(s).unwrap(), b"");
    // A line end never goes aside; nor does a long piece.
    r.peer.send(c, b"RETR a-file-name-longer-than-the-carry");
    r.until("a long piece", |r| {
        r.peek_all(s).is_ok_and(|d| d.len() == 38)
    });
    // The peer's FIN after the kept part: the kept bytes first, then Closed.
    r.peer.tcp(c).close();
    r.run(20);
    assert_eq!(r.peek_all(s).unwrap().len(), 38);
    r.net.consume(s, 38);
    assert_eq!(r.peek_all(s), Err(NetError::Closed));
}

#[test]
fn kept_line_ends_are_dropped_with_the_socket() {
    let mut r = Rig::new(1, 1);
    let (c, s) = r.accepted("192.0.2.2:21");
    r.peer.send(c, b"X\r\nHALF");
    r.until("data", |r| r.peek_all(s).is_ok_and(|d| d.len() == 7));
    r.net.consume(s, 3);
    assert_eq!(r.peek_all(s).unwrap(), b"HALF");
    r.net.abort(s);
    assert_eq!(r.peek_all(s), Err(NetError::Reset), "a stale handle");
    r.run(50);
    let (_c2, s2) = r.accepted("192.0.2.2:21");
    assert_eq!(r.peek_all(s2).unwrap(), b"", "nothing of the last client");
}

#[test]
fn one_socket_at_a_time_keeps_a_line_end_aside() {
    let mut r = Rig::new(2, 1);
    let (c1, s1) = r.accepted("192.0.2.2:21");
    let (c2, s2) = r.accepted("192.0.2.2:21");
    r.peer.send(c1, b"A\r\nONE");
    r.peer.send(c2, b"B\r\nTWO");
    r.until("data", |r| {
        r.peek_all(s1).is_ok_and(|d| d.len() == 6) && r.peek_all(s2).is_ok_and(|d| d.len() == 6)
    });
    r.net.consume(s1, 3);
    r.net.consume(s2, 3);
    // Kept aside for the first, left in the socket for the second: both
    // read the same.
    assert_eq!(r.peek_all(s1).unwrap(), b"ONE");
    assert_eq!(r.peek_all(s2).unwrap(), b"TWO");
    r.peer.send(c1, b"\r\n");
    r.peer.send(c2, b"\r\n");
    r.until("line ends", |r| {
        r.peek_all(s1).is_ok_and(|d| d.len() == 5) && r.peek_all(s2).is_ok_and(|d| d.len() == 5)
    });
    assert_eq!(r.peek_all(s1).unwrap(), b"ONE\r\n");
    assert_eq!(r.peek_all(s2).unwrap(), b"TWO\r\n");
    r.net.consume(s1, 5);
    r.net.consume(s2, 5);
    assert_eq!(r.peek_all(s1).unwrap(), b"");
    assert_eq!(r.peek_all(s2).unwrap(), b"");
}
