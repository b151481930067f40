//! Unit tests for the connection layer, with a collecting Outbound.

use super::*;
use crate::service::VecOutbound;
use crate::transport::DisconnectReason;
use crate::wire::{Reader, Writer};

fn policy() -> ConnectionPolicy {
    ConnectionPolicy {
        permit_open: vec!["db.internal:5432".into(), "*.web:443".into()],
        permit_listen: vec!["localhost:*".into()],
        window: 1000,
        max_packet: 100,
        max_channels: 3,
        keepalive_count_max: 2,
        ..ConnectionPolicy::default()
    }
}

fn msg(f: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut v = Vec::new();
    f(&mut Writer::new(&mut v));
    v
}

fn open_session(peer: u32, window: u32, max_packet: u32) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN).string(b"session").u32(peer).u32(window).u32(max_packet);
    })
}

fn open_direct(peer: u32, host: &str, port: u32) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN).string(b"direct-tcpip").u32(peer).u32(5000).u32(50);
        w.string(host.as_bytes()).u32(port).string(b"192.0.2.1").u32(40000);
    })
}

fn data(ch: u32, bytes: &[u8]) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::CHANNEL_DATA).u32(ch).string(bytes);
    })
}

fn only(m: u8, ch: u32) -> Vec<u8> {
    msg(|w| {
        w.u8(m).u32(ch);
    })
}

fn chan_req(ch: u32, name: &str, want: bool, rest: impl FnOnce(&mut Writer)) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::CHANNEL_REQUEST).u32(ch).string(name.as_bytes()).bool(want);
        rest(w);
    })
}

fn global(name: &str, want: bool, rest: impl FnOnce(&mut Writer)) -> Vec<u8> {
    msg(|w| {
        w.u8(msg_no::GLOBAL_REQUEST).string(name.as_bytes()).bool(want);
        rest(w);
    })
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(m[at..at + 4].try_into().unwrap())
}

/// A session channel (our id 0, the peer's 7) with a generous peer window.
fn with_session() -> (Connection, VecOutbound) {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_session(7, 10_000, 40)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_CONFIRMATION]);
    out.take();
    (c, out)
}

#[test]
fn session_open_confirms_with_our_window_and_packet() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_session(7, 10, 10)).unwrap();
    let m = &out.msgs[0];
    assert_eq!(m[0], msg_no::CHANNEL_OPEN_CONFIRMATION);
    assert_eq!((u32_at(m, 1), u32_at(m, 5), u32_at(m, 9), u32_at(m, 13)), (7, 0, 1000, 100));
}

#[test]
fn data_for_an_unknown_channel_disconnects() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    let e = c.handle_message(&mut out, &data(3, b"x")).unwrap_err();
    assert_eq!(e.reason, DisconnectReason::ProtocolError);
    for m in [
        msg_no::CHANNEL_EOF,
        msg_no::CHANNEL_CLOSE,
        msg_no::CHANNEL_WINDOW_ADJUST,
        msg_no::CHANNEL_REQUEST,
    ] {
        assert!(c.handle_message(&mut out, &only(m, 9)).is_err());
    }
    assert!(out.msgs.is_empty());
}

#[test]
fn window_overrun_and_oversized_packet_disconnect() {
    let (mut c, mut out) = with_session();
    // max_packet 100: a 101-byte message is refused even inside the window.
    assert_eq!(
        c.handle_message(&mut out, &data(0, &[0; 101])).unwrap_err().reason,
        DisconnectReason::ProtocolError
    );
    let (mut c, mut out) = with_session();
    for _ in 0..10 {
        c.handle_message(&mut out, &data(0, &[1; 100])).unwrap();
    }
    assert_eq!(c.inbound(ChannelId(0)).len(), 1000, "exactly the window is buffered");
    let e = c.handle_message(&mut out, &data(0, b"x")).unwrap_err();
    assert!(e.text.contains("window"), "{}", e.text);
}

#[test]
fn inbound_flow_control_grants_window_only_as_the_backend_consumes() {
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &data(0, &[1; 100])).unwrap();
    c.handle_message(&mut out, &data(0, &[2; 100])).unwrap();
    assert_eq!(
        events(&mut c),
        [Event::ChannelReadable { channel: ChannelId(0) }],
        "once, when it became non-empty"
    );
    assert_eq!(c.inbound(ChannelId(0)).len(), 200);
    assert_eq!(c.backend_consumed(&mut out, ChannelId(0), 150).unwrap(), 150);
    assert!(out.msgs.is_empty(), "below half the window: no adjust yet");
    assert_eq!(c.inbound(ChannelId(0)), &[2; 50][..]);
    for _ in 0..4 {
        c.handle_message(&mut out, &data(0, &[3; 100])).unwrap();
    }
    c.backend_consumed(&mut out, ChannelId(0), 450).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_WINDOW_ADJUST]);
    assert_eq!((u32_at(&out.msgs[0], 1), u32_at(&out.msgs[0], 5)), (7, 600));
    assert!(c.inbound(ChannelId(0)).is_empty());
}

#[test]
fn window_adjust_overflow_disconnects() {
    let (mut c, mut out) = with_session();
    let adj = |n: u32| {
        msg(|w| {
            w.u8(msg_no::CHANNEL_WINDOW_ADJUST).u32(0).u32(n);
        })
    };
    c.handle_message(&mut out, &adj(u32::MAX - 10_000)).unwrap();
    let e = c.handle_message(&mut out, &adj(1)).unwrap_err();
    assert_eq!(e.reason, DisconnectReason::ProtocolError);
}

#[test]
fn outbound_respects_peer_window_and_max_packet() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_session(7, 100, 40)).unwrap();
    out.take();
    let ch = ChannelId(0);
    assert_eq!(c.send_capacity(&out, ch), 100);
    assert_eq!(c.send_data(&mut out, ch, &[9; 250]).unwrap(), 100, "only the window");
    assert_eq!(
        out.msgs.iter().map(|m| u32_at(m, 5)).collect::<Vec<_>>(),
        [40, 40, 20],
        "split at max packet"
    );
    assert_eq!(c.send_capacity(&out, ch), 0);
    assert_eq!(c.send_data(&mut out, ch, b"more").unwrap(), 0);
    let adj = msg(|w| {
        w.u8(msg_no::CHANNEL_WINDOW_ADJUST).u32(0).u32(30);
    });
    c.handle_message(&mut out, &adj).unwrap();
    assert_eq!(events(&mut c), [Event::ChannelWritable { channel: ch }]);
    assert_eq!(c.send_capacity(&out, ch), 30);
    out.backpressured = true;
    assert_eq!(c.send_capacity(&out, ch), 0, "transport backpressure pauses producers");
}

#[test]
fn eof_close_ordering_and_half_close() {
    let (mut c, mut out) = with_session();
    let ch = ChannelId(0);
    // Client half-closes: we may still send.
    c.handle_message(&mut out, &only(msg_no::CHANNEL_EOF, 0)).unwrap();
    assert_eq!(events(&mut c), [Event::ChannelEof { channel: ch }]);
    assert!(c.handle_message(&mut out, &data(0, b"late")).is_err(), "data after EOF");
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_EOF, 0)).unwrap();
    assert_eq!(c.send_data(&mut out, ch, b"reply").unwrap(), 5);
    c.backend_eof(&mut out, ch).unwrap();
    c.backend_eof(&mut out, ch).unwrap();
    assert_eq!(c.send_data(&mut out, ch, b"x").unwrap(), 0, "nothing after our EOF");
    c.backend_closed(&mut out, ch).unwrap();
    c.backend_closed(&mut out, ch).unwrap();
    assert_eq!(
        out.numbers(),
        [msg_no::CHANNEL_DATA, msg_no::CHANNEL_EOF, msg_no::CHANNEL_CLOSE],
        "each once"
    );
    assert_eq!(c.channel_count(), 1, "slot held until the client's CLOSE");
    out.take();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    assert!(out.msgs.is_empty(), "CLOSE already sent: not answered twice");
    assert_eq!(c.channel_count(), 0);
    assert!(events(&mut c).contains(&Event::ChannelClosed { channel: ch }));
    assert!(c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).is_err(), "gone now");
}

#[test]
fn client_close_is_answered_once() {
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_CLOSE]);
    assert_eq!(u32_at(&out.msgs[0], 1), 7);
    assert_eq!(events(&mut c), [Event::ChannelClosed { channel: ChannelId(0) }]);
    c.backend_closed(&mut out, ChannelId(0)).unwrap();
    assert_eq!(out.msgs.len(), 1, "mutators on a gone channel do nothing");
}

#[test]
fn data_before_the_client_close_is_delivered_first() {
    let (mut c, mut out) = with_session();
    let ch = ChannelId(0);
    c.handle_message(&mut out, &data(0, b"last words")).unwrap();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    assert!(out.msgs.is_empty(), "CLOSE waits for the pending data");
    assert_eq!(
        events(&mut c),
        [Event::ChannelReadable { channel: ch }, Event::ChannelEof { channel: ch }]
    );
    assert_eq!(c.inbound(ch), b"last words");
    assert!(c.handle_message(&mut out, &data(0, b"more")).is_err(), "nothing after CLOSE");
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &data(0, b"last words")).unwrap();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    events(&mut c);
    assert_eq!(c.backend_consumed(&mut out, ch, 4).unwrap(), 4);
    assert!(out.msgs.is_empty());
    assert_eq!(c.backend_consumed(&mut out, ch, 6).unwrap(), 6);
    assert_eq!(out.numbers(), [msg_no::CHANNEL_CLOSE]);
    assert_eq!(events(&mut c), [Event::ChannelClosed { channel: ch }]);
    assert_eq!(c.channel_count(), 0);
}

#[test]
fn exec_and_exit_status_before_close() {
    let (mut c, mut out) = with_session();
    let ch = ChannelId(0);
    c.handle_message(
        &mut out,
        &chan_req(0, "env", true, |w| {
            w.string(b"LANG").string(b"C");
        }),
    )
    .unwrap();
    c.handle_message(
        &mut out,
        &chan_req(0, "env", true, |w| {
            w.string(b"PATH").string(b"/evil");
        }),
    )
    .unwrap();
    c.handle_message(
        &mut out,
        &chan_req(0, "pty-req", true, |w| {
            w.string(b"xterm").u32(80).u32(24).u32(0).u32(0).string(b"");
        }),
    )
    .unwrap();
    c.handle_message(
        &mut out,
        &chan_req(0, "exec", true, |w| {
            w.string(b"echo hi");
        }),
    )
    .unwrap();
    assert_eq!(
        out.numbers(),
        [
            msg_no::CHANNEL_SUCCESS,
            msg_no::CHANNEL_FAILURE,
            msg_no::CHANNEL_SUCCESS,
            msg_no::CHANNEL_SUCCESS
        ]
    );
    let size = msgs::WinSize { cols: 80, rows: 24, width_px: 0, height_px: 0 };
    assert_eq!(
        events(&mut c),
        [Event::Exec {
            channel: ch,
            command: Some("echo hi".into()),
            subsystem: None,
            env: vec![("LANG".into(), "C".into())],
            forced_command: None,
            pty: Some(Pty { term: "xterm".into(), size, modes: Vec::new() }),
        }]
    );
    out.take();
    c.child_exited(&mut out, ch, ExitStatus::Code(3)).unwrap();
    assert_eq!(
        out.numbers(),
        [msg_no::CHANNEL_REQUEST, msg_no::CHANNEL_EOF, msg_no::CHANNEL_CLOSE]
    );
    assert_eq!(u32_at(&out.msgs[0], 1 + 4 + 4 + 11 + 1), 3, "exit-status code");
    c.child_exited(&mut out, ch, ExitStatus::Code(3)).unwrap();
    assert_eq!(out.msgs.len(), 3, "once");
}

#[test]
fn exit_signal_and_forced_command() {
    let (mut c, mut out) = with_session();
    c.set_restrictions(KeyOptions { command: Some("/bin/forced".into()), ..KeyOptions::default() });
    c.handle_message(&mut out, &chan_req(0, "shell", false, |_| {})).unwrap();
    assert!(out.msgs.is_empty(), "no reply without want-reply");
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::Exec { command: None, forced_command: Some(f), .. }] if f == "/bin/forced")
    );
    c.child_exited(&mut out, ChannelId(0), ExitStatus::signal("KILL")).unwrap();
    assert_eq!(
        out.numbers(),
        [msg_no::CHANNEL_REQUEST, msg_no::CHANNEL_EOF, msg_no::CHANNEL_CLOSE]
    );
    assert!(out.msgs[0].windows(11).any(|w| w == b"exit-signal"));
}

#[test]
fn direct_tcpip_permit_and_backend_results() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_direct(1, "evil.example", 22)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_FAILURE]);
    assert_eq!(u32_at(&out.msgs[0], 5), msgs::OPEN_ADMINISTRATIVELY_PROHIBITED);
    out.take();
    c.handle_message(&mut out, &open_direct(2, "db.internal", 5432)).unwrap();
    assert!(out.msgs.is_empty(), "waits for the backend");
    let ev = events(&mut c);
    assert!(
        matches!(&ev[..], [Event::OpenBackend { channel: ChannelId(0), host, port: 5432, .. }] if host == "db.internal")
    );
    // Nothing may be said about the channel until it is open.
    assert!(c.handle_message(&mut out, &data(0, b"x")).is_err());
    let mut c2 = Connection::new(policy());
    c2.handle_message(&mut out, &open_direct(2, "db.internal", 5432)).unwrap();
    c2.backend_connected(&mut out, ChannelId(0)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_CONFIRMATION]);
    c2.handle_message(&mut out, &data(0, b"hello")).unwrap();
    assert_eq!(c2.inbound(ChannelId(0)), b"hello");
    out.take();
    c.backend_failed(&mut out, ChannelId(0), msgs::OPEN_CONNECT_FAILED, "connection refused")
        .unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_FAILURE]);
    assert_eq!((u32_at(&out.msgs[0], 1), u32_at(&out.msgs[0], 5)), (2, msgs::OPEN_CONNECT_FAILED));
    assert_eq!(c.channel_count(), 0);
}

#[test]
fn key_restrictions_apply_to_direct_tcpip() {
    let mut c = Connection::new(policy());
    c.set_restrictions(KeyOptions { no_port_forwarding: true, ..KeyOptions::default() });
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_direct(1, "db.internal", 5432)).unwrap();
    assert_eq!(u32_at(&out.msgs[0], 5), msgs::OPEN_ADMINISTRATIVELY_PROHIBITED);
}

#[test]
fn channel_table_is_bounded_and_unknown_types_refused() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    for i in 0..4 {
        c.handle_message(&mut out, &open_session(i, 10, 10)).unwrap();
    }
    assert_eq!(out.numbers()[3], msg_no::CHANNEL_OPEN_FAILURE);
    assert_eq!(u32_at(&out.msgs[3], 5), msgs::OPEN_RESOURCE_SHORTAGE);
    out.take();
    let x11 = msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN).string(b"x11").u32(9).u32(1).u32(1);
    });
    c.handle_message(&mut out, &x11).unwrap();
    assert_eq!(u32_at(&out.msgs[0], 5), msgs::OPEN_UNKNOWN_CHANNEL_TYPE);
}

#[test]
fn max_sessions_counts_sessions_only_and_max_channels_all() {
    let mut c = Connection::new(ConnectionPolicy {
        max_sessions: 2,
        max_channels: 5,
        permit_open: vec!["any".into()],
        ..policy()
    });
    let mut out = VecOutbound::default();
    for i in 0..3 {
        c.handle_message(&mut out, &open_session(i, 10, 10)).unwrap();
    }
    assert_eq!(out.numbers()[2], msg_no::CHANNEL_OPEN_FAILURE, "third session refused");
    out.take();
    // Forwards do not count against --max-sessions, only against --max-channels.
    for i in 10..14 {
        c.handle_message(&mut out, &open_direct(i, "db", 1)).unwrap();
    }
    assert_eq!(c.channel_count(), 5);
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_FAILURE], "sixth channel refused");
    assert_eq!(u32_at(&out.msgs[0], 5), msgs::OPEN_RESOURCE_SHORTAGE);
}

#[test]
fn window_budget_bounds_what_all_channels_can_buffer() {
    // Budget of 2.5 windows: two channels get the full window, the third what is left, the
    // rest one maximum packet each.
    let mut c = Connection::new(ConnectionPolicy {
        max_sessions: 10,
        max_channels: 10,
        window_budget: 2500,
        ..policy()
    });
    let mut out = VecOutbound::default();
    for i in 0..5 {
        c.handle_message(&mut out, &open_session(i, 10, 10)).unwrap();
    }
    let windows: Vec<u32> = out.msgs.iter().map(|m| u32_at(m, 9)).collect();
    assert_eq!(windows, [1000, 1000, 500, 100, 100]);
    // What the peer can make us hold over all channels (data past a window is refused with
    // an error, which ends the connection, and leaves nothing behind).
    let mut total = 0usize;
    for ch in 0..5u32 {
        while c.handle_message(&mut out, &data(ch, &[0; 100])).is_ok() {
            total += 100;
        }
    }
    assert_eq!(total, 2700, "window budget plus one packet per channel past it");
}

#[test]
fn no_more_sessions_is_honoured() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &global("no-more-sessions@openssh.com", false, |_| {})).unwrap();
    c.handle_message(&mut out, &open_session(1, 10, 10)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_FAILURE]);
}

#[test]
fn unknown_global_request_fails_only_when_a_reply_is_wanted() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(
        &mut out,
        &global("foo@example.com", false, |w| {
            w.u32(1);
        }),
    )
    .unwrap();
    assert!(out.msgs.is_empty());
    c.handle_message(&mut out, &global("foo@example.com", true, |_| {})).unwrap();
    assert_eq!(out.numbers(), [msg_no::REQUEST_FAILURE]);
}

#[test]
fn tcpip_forward_replies_in_order_with_bound_port() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.handle_message(
        &mut out,
        &global("tcpip-forward", true, |w| {
            w.string(b"localhost").u32(0);
        }),
    )
    .unwrap();
    c.handle_message(
        &mut out,
        &global("tcpip-forward", true, |w| {
            w.string(b"0.0.0.0").u32(80);
        }),
    )
    .unwrap();
    assert!(out.msgs.is_empty(), "the refusal waits behind the pending listen (RFC 4254 §4 order)");
    let ev = events(&mut c);
    let [Event::Listen { listener, port: 0, .. }] = ev[..] else { panic!("{ev:?}") };
    c.listen_result(&mut out, listener, Ok(40123)).unwrap();
    assert_eq!(out.numbers(), [msg_no::REQUEST_SUCCESS, msg_no::REQUEST_FAILURE]);
    assert_eq!(u32_at(&out.msgs[0], 1), 40123, "port 0 asked: the bound port is sent");
    out.take();

    let id = c.forwarded_connection(&mut out, listener, "198.51.100.2", 5555).unwrap().unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN]);
    assert!(c.handle_message(&mut out, &data(id.0, b"x")).is_err(), "not open until confirmed");
    let mut c = Connection::new(policy());
    c.handle_message(
        &mut out,
        &global("tcpip-forward", false, |w| {
            w.string(b"localhost").u32(8080);
        }),
    )
    .unwrap();
    let ev = events(&mut c);
    let [Event::Listen { listener, .. }] = ev[..] else { panic!("{ev:?}") };
    c.listen_result(&mut out, listener, Ok(8080)).unwrap();
    out.take();
    let id = c.forwarded_connection(&mut out, listener, "198.51.100.2", 5555).unwrap().unwrap();
    let confirm = msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN_CONFIRMATION).u32(id.0).u32(77).u32(500).u32(100);
    });
    c.handle_message(&mut out, &confirm).unwrap();
    assert_eq!(events(&mut c), [Event::ChannelOpened { channel: id }]);
    assert_eq!(c.send_capacity(&out, id), 500);
    assert_eq!(c.channel_listener(id), Some(listener));
    let id2 = c.forwarded_connection(&mut out, listener, "198.51.100.3", 1).unwrap().unwrap();
    let refuse = msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN_FAILURE).u32(id2.0).u32(2).string(b"nope").string(b"");
    });
    c.handle_message(&mut out, &refuse).unwrap();
    assert!(matches!(&events(&mut c)[..], [Event::ChannelOpenFailed { code: 2, .. }]));
    // cancel
    out.take();
    c.handle_message(
        &mut out,
        &global("cancel-tcpip-forward", true, |w| {
            w.string(b"localhost").u32(8080);
        }),
    )
    .unwrap();
    assert_eq!(out.numbers(), [msg_no::REQUEST_SUCCESS]);
    assert_eq!(events(&mut c), [Event::Unlisten { listener }]);
    assert_eq!(
        c.forwarded_connection(&mut out, listener, "x", 1).unwrap(),
        Err(ForwardError::NoListener)
    );
}

#[test]
fn pending_global_replies_are_bounded() {
    let mut c = Connection::new(ConnectionPolicy { max_listeners: 1000, ..policy() });
    let mut out = VecOutbound::default();
    let mut result = Ok(());
    for _ in 0..=MAX_PENDING_GLOBAL_REPLIES {
        result = c.handle_message(
            &mut out,
            &global("tcpip-forward", true, |w| {
                w.string(b"localhost").u32(1);
            }),
        );
    }
    assert!(result.is_err());
}

#[test]
fn keepalive_counts_missed_replies() {
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    c.keepalive_tick(&mut out).unwrap();
    c.handle_message(&mut out, &[msg_no::REQUEST_FAILURE]).unwrap();
    c.keepalive_tick(&mut out).unwrap();
    c.keepalive_tick(&mut out).unwrap();
    let e = c.keepalive_tick(&mut out).unwrap_err();
    assert_eq!(e.text, "keepalive timeout");
    assert_eq!(out.msgs.len(), 3);
    assert!(
        Connection::new(policy()).handle_message(&mut out, &[msg_no::REQUEST_SUCCESS]).is_err(),
        "unsolicited reply"
    );
}

#[test]
fn extended_data_from_client_is_discarded_but_counted() {
    let (mut c, mut out) = with_session();
    let ext = msg(|w| {
        w.u8(msg_no::CHANNEL_EXTENDED_DATA).u32(0).u32(1).string(&[0; 100]);
    });
    for _ in 0..5 {
        c.handle_message(&mut out, &ext).unwrap();
    }
    assert!(c.inbound(ChannelId(0)).is_empty());
    assert_eq!(out.numbers(), [msg_no::CHANNEL_WINDOW_ADJUST], "window given back");
}

#[test]
fn hostile_peer_memory_stays_bounded() {
    // Whatever the peer sends, pending inbound never exceeds the window.
    let (mut c, mut out) = with_session();
    let mut total = 0usize;
    while c.handle_message(&mut out, &data(0, &[0; 100])).is_ok() {
        total += 100;
        assert!(c.inbound(ChannelId(0)).len() <= 1000);
        assert!(total <= 1000);
    }
}

/// Random and mutated messages never panic and never grow state past its bounds.
#[test]
fn random_input_never_panics() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let valid = [
        open_session(1, 5000, 100),
        open_direct(2, "db.internal", 5432),
        data(0, b"abc"),
        only(msg_no::CHANNEL_EOF, 0),
        only(msg_no::CHANNEL_CLOSE, 0),
        chan_req(0, "exec", true, |w| {
            w.string(b"ls");
        }),
        global("tcpip-forward", true, |w| {
            w.string(b"localhost").u32(0);
        }),
    ];
    let mut c = Connection::new(policy());
    let mut out = VecOutbound::default();
    for _ in 0..20_000 {
        let r = next();
        let mut m = match r % 3 {
            0 => valid[(r >> 8) as usize % valid.len()].clone(),
            1 => {
                let len = (r >> 8) as usize % 40;
                let mut v: Vec<u8> = (0..len).map(|_| next() as u8).collect();
                v.insert(0, 80 + (r >> 16) as u8 % 21);
                v
            }
            _ => {
                let mut v = valid[(r >> 8) as usize % valid.len()].clone();
                let i = (r >> 16) as usize % v.len();
                v[i] = (r >> 24) as u8;
                v
            }
        };
        if r % 7 == 0 {
            m.truncate((r >> 32) as usize % (m.len() + 1));
        }
        if c.handle_message(&mut out, &m).is_err() {
            c = Connection::new(policy());
        }
        if r % 5 == 0 {
            let ch = ChannelId((r >> 40) as u32 % 4);
            let _ = c.backend_connected(&mut out, ch);
            let _ = c.send_data(&mut out, ch, &[0; 300]);
            let _ = c.backend_consumed(&mut out, ch, 1000);
        }
        assert!(c.channel_count() <= 3);
        for i in 0..4 {
            assert!(c.inbound(ChannelId(i)).len() <= 1000);
        }
        while c.poll_event().is_some() {}
        out.msgs.clear();
    }
}

struct TakeUpTo(usize, Vec<u8>);

impl DataSink for TakeUpTo {
    fn write(&mut self, _channel: ChannelId, data: &[u8]) -> usize {
        let n = data.len().min(self.0);
        self.1.extend_from_slice(&data[..n]);
        n
    }
}

#[test]
fn zero_copy_sink_takes_first_and_only_the_rest_is_queued() {
    let (mut c, mut out) = with_session();
    let mut sink = TakeUpTo(usize::MAX, Vec::new());
    for _ in 0..5 {
        c.handle_message_with(&mut out, &data(0, &[7; 100]), Some(&mut sink)).unwrap();
    }
    assert_eq!(sink.1.len(), 500);
    assert!(c.inbound(ChannelId(0)).is_empty());
    assert!(events(&mut c).is_empty(), "nothing queued: no Readable");
    assert_eq!(out.numbers(), [msg_no::CHANNEL_WINDOW_ADJUST], "taken bytes give window back");
    out.take();
    // A slow backend: part goes through, the rest waits, and the order is kept afterwards.
    let mut slow = TakeUpTo(30, Vec::new());
    c.handle_message_with(&mut out, &data(0, b"0123456789".repeat(5).as_slice()), Some(&mut slow))
        .unwrap();
    assert_eq!(slow.1.len(), 30);
    assert_eq!(c.inbound(ChannelId(0)).len(), 20);
    assert_eq!(events(&mut c), [Event::ChannelReadable { channel: ChannelId(0) }]);
    c.handle_message_with(&mut out, &data(0, b"later"), Some(&mut slow)).unwrap();
    assert_eq!(slow.1.len(), 30, "not offered while older bytes are queued");
    assert_eq!(&c.inbound(ChannelId(0))[20..], b"later");
}

#[test]
fn channel_numbers_are_not_reused_for_a_new_channel() {
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    events(&mut c);
    out.take();
    c.handle_message(&mut out, &open_session(8, 100, 100)).unwrap();
    let new_id = u32_at(&out.msgs[0], 5);
    assert_ne!(new_id, 0, "same slot, new generation");
    assert_eq!(new_id & 0xffff, 0);
    out.take();
    // A late call about the old channel does nothing to the new one.
    c.backend_closed(&mut out, ChannelId(0)).unwrap();
    assert!(c.send_data(&mut out, ChannelId(0), b"x").unwrap() == 0);
    assert!(out.msgs.is_empty());
    assert!(c.handle_message(&mut out, &data(0, b"x")).is_err(), "old number is unknown");
    c.handle_message(&mut out, &data(new_id, b"x")).unwrap();
    assert_eq!(c.inbound(ChannelId(new_id)), b"x");
}

#[test]
fn streamlocal_open_listen_forward_and_cancel() {
    let mut c = Connection::new(ConnectionPolicy {
        permit_open_path: vec!["/run/app/*.sock".into()],
        permit_listen_path: vec!["/tmp/fwd-*.sock".into()],
        ..policy()
    });
    let mut out = VecOutbound::default();
    let open = |peer: u32, path: &str| {
        msg(|w| {
            w.u8(msg_no::CHANNEL_OPEN)
                .string(b"direct-streamlocal@openssh.com")
                .u32(peer)
                .u32(5000)
                .u32(50)
                .string(path.as_bytes())
                .string(b"")
                .u32(0);
        })
    };
    c.handle_message(&mut out, &open(1, "/run/other/x.sock")).unwrap();
    assert_eq!(u32_at(&out.msgs[0], 5), msgs::OPEN_ADMINISTRATIVELY_PROHIBITED);
    out.take();
    c.handle_message(&mut out, &open(2, "/run/app/db.sock")).unwrap();
    assert!(out.msgs.is_empty(), "confirmed once the backend connects");
    assert_eq!(
        events(&mut c),
        [Event::OpenUnixBackend { channel: ChannelId(0), path: "/run/app/db.sock".into() }]
    );

    let listen = |name: &str, path: &str| {
        global(name, true, |w| {
            w.string(path.as_bytes());
        })
    };
    c.handle_message(&mut out, &listen("streamlocal-forward@openssh.com", "/etc/x.sock")).unwrap();
    assert_eq!(out.numbers(), [msg_no::REQUEST_FAILURE]);
    out.take();
    c.handle_message(&mut out, &listen("streamlocal-forward@openssh.com", "/tmp/fwd-a.sock"))
        .unwrap();
    let ev = events(&mut c);
    let Some(Event::ListenUnix { listener, path }) = ev.first() else { panic!("{ev:?}") };
    assert_eq!(path, "/tmp/fwd-a.sock");
    c.listen_result(&mut out, *listener, Ok(0)).unwrap();
    assert_eq!(out.msgs, [vec![msg_no::REQUEST_SUCCESS]], "no port in the reply");
    out.take();
    // A connection on it opens forwarded-streamlocal@openssh.com naming the path.
    let id = c.forwarded_connection(&mut out, *listener, "", 0).unwrap().unwrap();
    let m = &out.msgs[0];
    let mut r = Reader::new(m);
    r.u8("n").unwrap();
    assert_eq!(r.string("type").unwrap(), b"forwarded-streamlocal@openssh.com");
    assert_eq!(r.u32("sender").unwrap(), id.0);
    r.u32("w").unwrap();
    r.u32("m").unwrap();
    assert_eq!(r.string("path").unwrap(), b"/tmp/fwd-a.sock");
    r.string("reserved").unwrap();
    r.finish("open").unwrap();
    out.take();
    c.handle_message(
        &mut out,
        &listen("cancel-streamlocal-forward@openssh.com", "/tmp/fwd-a.sock"),
    )
    .unwrap();
    assert_eq!(out.numbers(), [msg_no::REQUEST_SUCCESS]);
    assert!(events(&mut c).contains(&Event::Unlisten { listener: *listener }));
}

#[test]
fn agent_forwarding_request_and_agent_channel() {
    // Off (the default): refused, nothing noted, no channel to open.
    let (mut c, mut out) = with_session();
    c.handle_message(&mut out, &chan_req(0, "auth-agent-req@openssh.com", true, |_| {})).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_FAILURE]);
    assert!(events(&mut c).is_empty());
    assert_eq!(c.agent_requested(), None);
    assert_eq!(c.open_agent_channel(&mut out).unwrap(), Err(AgentChannelError::NotRequested));

    // Allowed, but the login key says no-agent-forwarding.
    let (mut c, mut out) = with_session();
    c.allow_agent_forwarding(true);
    c.set_restrictions(KeyOptions { no_agent_forwarding: true, ..KeyOptions::default() });
    c.handle_message(&mut out, &chan_req(0, "auth-agent-req@openssh.com", true, |_| {})).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_FAILURE]);
    assert_eq!(c.agent_requested(), None);

    // Allowed: noted (once), then an auth-agent@openssh.com channel carries agent frames.
    let (mut c, mut out) = with_session();
    c.allow_agent_forwarding(true);
    // OpenSSH asks without want-reply.
    c.handle_message(&mut out, &chan_req(0, "auth-agent-req@openssh.com", false, |_| {})).unwrap();
    assert!(out.numbers().is_empty());
    let session = ChannelId(0);
    assert_eq!(events(&mut c), [Event::AgentForwarding { channel: session }]);
    assert_eq!(c.agent_requested(), Some(session));
    c.handle_message(&mut out, &chan_req(0, "auth-agent-req@openssh.com", true, |_| {})).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_SUCCESS]);
    assert!(events(&mut c).is_empty(), "noted once");
    out.take();
    let id = c.open_agent_channel(&mut out).unwrap().unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN]);
    let mut r = Reader::new(&out.msgs[0][1..]);
    assert_eq!(r.string("type").unwrap(), b"auth-agent@openssh.com");
    assert_eq!(r.u32("sender").unwrap(), id.0);
    r.u32("window").unwrap();
    r.u32("max packet").unwrap();
    assert!(r.is_empty(), "no type-specific data");
    out.take();
    let confirm = msg(|w| {
        w.u8(msg_no::CHANNEL_OPEN_CONFIRMATION).u32(id.0).u32(9).u32(4096).u32(1024);
    });
    c.handle_message(&mut out, &confirm).unwrap();
    assert_eq!(events(&mut c), [Event::ChannelOpened { channel: id }]);
    let req = crate::proxy::agent::request_identities();
    assert_eq!(c.send_data(&mut out, id, &req).unwrap(), req.len());
    assert_eq!(out.numbers(), [msg_no::CHANNEL_DATA]);
    assert_eq!(u32_at(&out.msgs[0], 1), 9, "to the client's number for it");
    c.handle_message(&mut out, &data(id.0, &[0, 0, 0, 1, 5])).unwrap();
    assert_eq!(events(&mut c), [Event::ChannelReadable { channel: id }]);
    let mut d = crate::proxy::agent::Decoder::new();
    let n = d.push(c.inbound(id)).unwrap();
    c.backend_consumed(&mut out, id, n).unwrap();
    assert_eq!(d.next_reply().unwrap(), Some(crate::proxy::agent::Reply::Failure));
    out.take();
    c.backend_closed(&mut out, id).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_EOF, msg_no::CHANNEL_CLOSE]);

    // Once the session that asked is closed, the agent is out of reach.
    out.take();
    c.handle_message(&mut out, &only(msg_no::CHANNEL_CLOSE, 0)).unwrap();
    assert_eq!(c.agent_requested(), None);
    assert_eq!(c.open_agent_channel(&mut out).unwrap(), Err(AgentChannelError::NotRequested));

    // Only a session may ask.
    let mut c = Connection::new(policy());
    c.allow_agent_forwarding(true);
    c.handle_message(&mut out, &open_direct(3, "db.internal", 5432)).unwrap();
    let ev = events(&mut c);
    let [Event::OpenBackend { channel, .. }] = ev[..] else { panic!("{ev:?}") };
    c.backend_connected(&mut out, channel).unwrap();
    out.take();
    let req = chan_req(channel.0, "auth-agent-req@openssh.com", true, |_| {});
    c.handle_message(&mut out, &req).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_FAILURE]);
    assert_eq!(c.agent_requested(), None);
}

/// A routed (proxied) user's direct-tcpip is the upstream's to allow or refuse: the gateway's
/// own `--permit-open` is not applied (nothing is dialled locally), the login key's
/// `permitopen=` / `no-port-forwarding` still are.
#[test]
fn proxied_direct_tcpip_ignores_the_local_permit_open() {
    let mut c = Connection::new(policy());
    c.set_proxied();
    let mut out = VecOutbound::default();
    c.handle_message(&mut out, &open_direct(1, "127.0.0.1", 40000)).unwrap();
    assert!(out.msgs.is_empty(), "carried upstream, not refused");
    assert!(matches!(&events(&mut c)[..], [Event::OpenBackend { port: 40000, .. }]));
    c.set_restrictions(KeyOptions { no_port_forwarding: true, ..KeyOptions::default() });
    c.handle_message(&mut out, &open_direct(2, "127.0.0.1", 40000)).unwrap();
    assert_eq!(out.numbers(), [msg_no::CHANNEL_OPEN_FAILURE], "the key's restriction holds");
}
