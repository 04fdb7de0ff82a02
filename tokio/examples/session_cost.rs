//! The core's memory per connected session: a [`Broker`] (profile `mqtt311`, default
//! config) alone, without sockets or tasks, measured by a counting global allocator.
//!
//! ```text
//! cargo run --release -p mqtt-sansio-tokio --example session_cost -- [N]
//! ```
//!
//! Opens N connections (default 5 000), each sending a CONNECT (clean session, client id
//! `idle-I`, keep alive 0) and one SUBSCRIBE (`idle/I/#`, QoS 1), takes every action the
//! broker has (the CONNACKs and SUBACKs, dropped), then prints the bytes still allocated
//! per session: `sessions N live_bytes B bytes_per_session C (open O, connect K,
//! subscribe S)`, the last three what each step added. The same traffic as
//! `benches/idle-connections.py` sends to the broker processes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use mqtt_sansio::broker::{Broker, BrokerConfig, ConnId};
use mqtt_sansio::{Instant, Profile};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to `System` unchanged; only a counter is updated beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract for `dealloc` is passed on as it is.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mqtt_string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u16).to_be_bytes());
    out.extend(s.as_bytes());
}

/// A packet: first byte, Remaining Length (§2.2.3), body.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        out.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    out.extend(body);
    out
}

fn main() {
    let n: u64 = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 5000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: session_cost [N > 0]");
            std::process::exit(2);
        }
    };
    let now = Instant::from_secs(1);
    let mut broker = Broker::new(Profile::mqtt311(), BrokerConfig::default());
    // Everything the broker holds before any session, and the scratch of this loop,
    // are left out of the difference.
    while broker.poll_action().is_some() {}
    let before = LIVE.load(Ordering::Relaxed);
    // Bytes added by each step, over all sessions: the open connection, its CONNECT
    // (the session), its SUBSCRIBE (the subscription).
    let mut steps = [0isize; 3];
    for i in 0..n {
        let conn = ConnId(i + 1);
        let mut connect = Vec::new();
        mqtt_string(&mut connect, "MQTT");
        connect.extend([4, 0x02, 0, 0]);
        mqtt_string(&mut connect, &format!("idle-{i}"));
        let mut subscribe = vec![0, 1];
        mqtt_string(&mut subscribe, &format!("idle/{i}/#"));
        subscribe.push(1);
        let connect = packet(0x10, &connect);
        let subscribe = packet(0x82, &subscribe);
        // The packets themselves are allocated before the first mark and freed after
        // the last step.
        let mut mark = LIVE.load(Ordering::Relaxed);
        let mut step = |k: usize| {
            let now = LIVE.load(Ordering::Relaxed);
            steps[k] += now - mark;
            mark = now;
        };
        if let Err(e) = broker.open(now, conn) {
            eprintln!("conn {i}: {e:?}");
            std::process::exit(1);
        }
        step(0);
        let mut answers = 0;
        for (k, bytes) in [(1, &connect), (2, &subscribe)] {
            broker.handle_bytes(now, conn, bytes);
            while broker.poll_action().is_some() {
                answers += 1;
            }
            step(k);
        }
        if answers < 2 {
            eprintln!("conn {i}: {answers} action(s), expected CONNACK and SUBACK");
            std::process::exit(1);
        }
    }
    let live = LIVE.load(Ordering::Relaxed) - before;
    let per = |b: isize| b / n as isize;
    println!(
        "sessions {n} live_bytes {live} bytes_per_session {} (open {}, connect {}, subscribe {})",
        per(live),
        per(steps[0]),
        per(steps[1]),
        per(steps[2])
    );
}
