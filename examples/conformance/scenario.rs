//! `broker` mode: the broker scenario vectors, played over TCP.
//!
//! Each connection of a vector is one `TcpStream` with a reader thread that decodes
//! what the broker sends and timestamps every packet and the close. Steps map onto real
//! time as follows:
//!
//! - `expect` / `expect_one_of` / `expect_closed` wait until what they expect has
//!   arrived, at most `--timeout-ms` (default 3000 ms); right after `advance_ms`, where
//!   the vector says when something happens, at most `--late-ms` (default 1000 ms, one
//!   tick of a broker clock counting whole seconds) past the end of the advance;
//! - `advance_ms T` sleeps T ms;
//! - `expect_nothing` waits a quiet period (`--quiet-ms`, default 200 ms), except right
//!   after `advance_ms`, where it checks that nothing arrived before the instant the
//!   advance ended, without waiting more (so "not before 2.9 s" is not blurred by the
//!   quiet period into "not before 3.1 s").
//!
//! Vectors are skipped, with the reason, when they need broker configuration (`setup`)
//! or more than 10 s of `advance_ms` (unless `--slow`), unless named with `--only`.
//! Prefixable vectors get a per-run prefix on client ids and topics; vectors that are
//! not prefixable run first, unprefixed. After each vector the checker disconnects what
//! is still open (DISCONNECT, so no will fires), clears the retained messages the vector
//! set (not in the AWS IoT profile, where a retained PUBLISH closes the connection) and
//! ends the persistent sessions it opened, so vectors do not disturb each other.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use mqtt_sansio::{Decoder, Packet, Status};
use serde_json::{Value, json};

use crate::Common;
use crate::canonical::{from_hex, packet_from_json, packet_to_json};
use crate::report::{Entry, Outcome, Report};
use crate::vectors::expand;
use crate::vectors::prefix_packet;

/// Options of `broker` mode.
pub struct Options {
    pub host: String,
    pub port: u16,
    pub profile: String,
    pub slow: bool,
    pub timeout: Duration,
    pub quiet: Duration,
    pub late: Duration,
    pub prefix: Option<String>,
    /// The directory of broker vectors (default: this crate's).
    pub dir: Option<std::path::PathBuf>,
}

/// The most `advance_ms` a vector may add up to without `--slow`.
const MAX_ADVANCE_MS: u64 = 10_000;

/// What a reader thread reports.
enum Event {
    Packet(Instant, Packet<Bytes>),
    /// The broker closed the connection (EOF, reset, or bytes that are not MQTT).
    Closed(Instant, String),
}

/// One TCP connection and what has arrived on it.
struct Conn {
    stream: TcpStream,
    events: Receiver<Event>,
    inbox: VecDeque<(Instant, Packet<Bytes>)>,
    closed: Option<(Instant, String)>,
    /// Closed by the vector (`close`); nothing more is read.
    dropped: bool,
}

impl Conn {
    fn open(addr: &std::net::SocketAddr, timeout: Duration) -> Result<Conn, String> {
        let stream =
            TcpStream::connect_timeout(addr, timeout).map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut reader = stream.try_clone().map_err(|e| e.to_string())?;
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let decoder = Decoder::new();
            let mut buf = BytesMut::new();
            let mut chunk = [0u8; 16 * 1024];
            loop {
                loop {
                    match decoder.decode_bytes(&mut buf) {
                        Ok(Status::Complete(p, _)) => {
                            if tx.send(Event::Packet(Instant::now(), p)).is_err() {
                                return;
                            }
                        }
                        Ok(Status::Incomplete(_)) => break,
                        Err(e) => {
                            let _ = tx.send(Event::Closed(
                                Instant::now(),
                                format!(
                                    "broker sent bytes that are not a packet: {} ({})",
                                    e.kind(),
                                    e.rule()
                                ),
                            ));
                            return;
                        }
                    }
                }
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        let why = if buf.is_empty() {
                            "closed".to_string()
                        } else {
                            format!("closed inside a packet ({} bytes pending)", buf.len())
                        };
                        let _ = tx.send(Event::Closed(Instant::now(), why));
                        return;
                    }
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Event::Closed(Instant::now(), format!("closed ({e})")));
                        return;
                    }
                }
            }
        });
        Ok(Conn {
            stream,
            events: rx,
            inbox: VecDeque::new(),
            closed: None,
            dropped: false,
        })
    }

    fn file(&mut self, e: Event) {
        match e {
            Event::Packet(t, p) => self.inbox.push_back((t, p)),
            Event::Closed(t, why) => {
                if self.closed.is_none() {
                    self.closed = Some((t, why));
                }
            }
        }
    }

    /// Files the next event, waiting for it at most until `until`, and whatever else has
    /// arrived. Returns false when there was no event by then (or the reader has ended).
    fn pump(&mut self, until: Instant) -> bool {
        let wait = until.saturating_duration_since(Instant::now());
        match self.events.recv_timeout(wait) {
            Ok(e) => {
                self.file(e);
                self.drain();
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                if self.closed.is_none() {
                    self.closed = Some((Instant::now(), "reader ended".into()));
                }
                false
            }
        }
    }

    fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.file(e);
        }
    }

    fn last_event(&self) -> Option<Instant> {
        let p = self.inbox.back().map(|(t, _)| *t);
        let c = self.closed.as_ref().map(|(t, _)| *t);
        p.max(c)
    }

    fn describe(&self) -> String {
        let packets: Vec<String> = self
            .inbox
            .iter()
            .map(|(_, p)| packet_to_json(p).to_string())
            .collect();
        let state = match &self.closed {
            Some((_, why)) => format!("then {why}"),
            None => "still open".into(),
        };
        if packets.is_empty() {
            format!("nothing, {state}")
        } else {
            format!("[{}], {state}", packets.join(", "))
        }
    }
}

/// A failed step: what was expected, what arrived.
type Fail = String;

struct Player<'a> {
    opts: &'a Options,
    addr: std::net::SocketAddr,
    prefix: String,
    conns: BTreeMap<u64, Conn>,
    vars: BTreeMap<String, Value>,
    /// The instant the previous step, if it was `advance_ms`, ended.
    advanced_to: Option<Instant>,
    /// Topics a retained message was (or may have been) set on.
    retained: BTreeSet<String>,
    /// Client ids that connected with clean session 0.
    persistent: BTreeSet<String>,
}

impl Player<'_> {
    fn conn(&mut self, step: &Value, key: &str) -> Result<(u64, &mut Conn), Fail> {
        let n = step[key]
            .as_u64()
            .ok_or_else(|| format!("{key} needs a connection number"))?;
        match self.conns.get_mut(&n) {
            Some(c) => Ok((n, c)),
            None => Err(format!("connection {n} was never opened")),
        }
    }

    /// A packet to send, variables substituted and prefix applied; records what cleanup
    /// it will need.
    fn outgoing(&mut self, p: &Value) -> Result<Vec<u8>, Fail> {
        let mut p = prefix_packet(p, &self.prefix);
        if let Some(o) = p.as_object_mut() {
            for (_, x) in o.iter_mut() {
                if let Some(name) = x.as_str().and_then(|s| s.strip_prefix('?')) {
                    *x = self
                        .vars
                        .get(name)
                        .ok_or_else(|| format!("unbound ?{name}"))?
                        .clone();
                }
            }
        }
        let packet = packet_from_json(&p).map_err(|e| format!("bad packet in vector {p}: {e}"))?;
        match &packet {
            Packet::Publish(pb) if pb.retain && !pb.payload.is_empty() => {
                self.retained.insert(pb.topic.as_str().to_string());
            }
            Packet::Connect(c) => {
                if !c.clean_session {
                    self.persistent.insert(c.client_id.as_str().to_string());
                }
                if let Some(w) = c.will.as_ref().filter(|w| w.retain) {
                    self.retained.insert(w.topic.as_str().to_string());
                }
            }
            _ => {}
        }
        packet
            .to_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| format!("cannot encode {p}: {e:?}"))
    }

    /// Whether `got` matches `want`, binding variables into `vars`.
    fn matches(
        &self,
        want: &Value,
        got: &Packet<Bytes>,
        vars: &mut BTreeMap<String, Value>,
    ) -> Result<bool, Fail> {
        let actual = packet_to_json(got);
        let mut want = prefix_packet(want, &self.prefix);
        let Some(o) = want.as_object_mut() else {
            return Err(format!("expected packet is not an object: {want}"));
        };
        for (k, x) in o.iter_mut() {
            if let Some(name) = x.as_str().and_then(|s| s.strip_prefix('?')) {
                let Some(a) = actual.get(k) else {
                    return Ok(false);
                };
                match vars.get(name) {
                    Some(bound) if bound != a => return Ok(false),
                    _ => {
                        vars.insert(name.to_string(), a.clone());
                    }
                }
                *x = a.clone();
            }
        }
        let want =
            packet_from_json(&want).map_err(|e| format!("bad expected packet {want}: {e}"))?;
        Ok(packet_to_json(&want) == actual)
    }

    /// Whether the first packets of `inbox` are `want`; the bindings if so.
    fn try_match(
        &self,
        inbox: &VecDeque<(Instant, Packet<Bytes>)>,
        want: &[Value],
    ) -> Result<Option<BTreeMap<String, Value>>, Fail> {
        if inbox.len() < want.len() {
            return Ok(None);
        }
        let mut vars = self.vars.clone();
        for (w, (_, g)) in want.iter().zip(inbox) {
            if !self.matches(w, g, &mut vars)? {
                return Ok(None);
            }
        }
        Ok(Some(vars))
    }

    fn wanted(want: &[Value]) -> String {
        let w: Vec<String> = want.iter().map(Value::to_string).collect();
        format!("[{}]", w.join(", "))
    }

    fn step(&mut self, s: &Value) -> Result<(), Fail> {
        let o = s.as_object().ok_or("step is not an object")?;
        let advanced_to = self.advanced_to.take();
        // Right after `advance_ms`, what the vector expects "now" may come `late` late;
        // otherwise an expectation waits at most `timeout` for what it expects.
        let timeout = self.opts.timeout;
        let late = self.opts.late;
        let timed = |now: Instant| match advanced_to {
            Some(t) => t + late,
            None => now + timeout,
        };
        if o.contains_key("open") {
            let n = s["open"].as_u64().ok_or("open needs a connection number")?;
            if self.conns.contains_key(&n) {
                return Err(format!("connection {n} opened twice"));
            }
            let c = Conn::open(&self.addr, timeout)?;
            self.conns.insert(n, c);
        } else if o.contains_key("send") {
            let mut bytes = Vec::new();
            if let Some(h) = s.get("hex").and_then(Value::as_str) {
                bytes = from_hex(h)?;
            }
            if let Some(p) = s.get("packet") {
                let b = self.outgoing(p)?;
                bytes.extend_from_slice(&b);
            }
            for p in s
                .get("packets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let b = self.outgoing(p)?;
                bytes.extend_from_slice(&b);
            }
            let (n, c) = self.conn(s, "send")?;
            c.stream
                .write_all(&bytes)
                .map_err(|e| format!("writing on connection {n}: {e} (it has {})", c.describe()))?;
        } else if o.contains_key("expect") {
            let want = s["packets"].as_array().cloned().unwrap_or_default();
            let deadline = timed(Instant::now());
            let n = s["expect"].as_u64().unwrap_or(0);
            loop {
                let (_, c) = self.conn(s, "expect")?;
                c.drain();
                if c.inbox.len() >= want.len() || c.closed.is_some() {
                    break;
                }
                if !c.pump(deadline) && Instant::now() >= deadline {
                    break;
                }
            }
            let inbox = std::mem::take(&mut self.conns.get_mut(&n).ok_or("no connection")?.inbox);
            let hit = self.try_match(&inbox, &want)?;
            let c = self.conns.get_mut(&n).ok_or("no connection")?;
            c.inbox = inbox;
            match hit {
                Some(vars) => {
                    self.vars = vars;
                    c.inbox.drain(..want.len());
                }
                None => {
                    return Err(format!(
                        "on connection {n} expected {}, got {}",
                        Self::wanted(&want),
                        c.describe()
                    ));
                }
            }
        } else if o.contains_key("expect_one_of") {
            let choices = s["choices"].as_array().cloned().unwrap_or_default();
            let n = s["expect_one_of"].as_u64().unwrap_or(0);
            let start = Instant::now();
            let deadline = timed(start);
            let quiet = self.opts.quiet;
            loop {
                let (_, c) = self.conn(s, "expect_one_of")?;
                c.drain();
                let closed = c.closed.is_some();
                let inbox = std::mem::take(&mut c.inbox);
                let last = c.last_event().unwrap_or(start).max(start);
                let settled = closed || Instant::now() >= last + quiet;
                let mut found = None;
                for ch in &choices {
                    let want = ch["packets"].as_array().cloned().unwrap_or_default();
                    let want_closed = ch.get("closed").and_then(Value::as_bool).unwrap_or(false);
                    if inbox.len() != want.len() || want_closed != closed || !settled {
                        continue;
                    }
                    if let Some(vars) = self.try_match(&inbox, &want)? {
                        found = Some((vars, want.len()));
                        break;
                    }
                }
                let c = self.conns.get_mut(&n).ok_or("no connection")?;
                c.inbox = inbox;
                if let Some((vars, len)) = found {
                    self.vars = vars;
                    c.inbox.drain(..len);
                    break;
                }
                if closed || Instant::now() >= deadline {
                    let w: Vec<String> = choices
                        .iter()
                        .map(|ch| {
                            let want = ch["packets"].as_array().cloned().unwrap_or_default();
                            let closed = ch.get("closed").and_then(Value::as_bool).unwrap_or(false);
                            format!(
                                "{} then {}",
                                Self::wanted(&want),
                                if closed { "closed" } else { "open" }
                            )
                        })
                        .collect();
                    return Err(format!(
                        "on connection {n} expected one of {}; got {}",
                        w.join(" | "),
                        c.describe()
                    ));
                }
                let until = (Instant::now() + quiet).min(deadline);
                c.pump(until);
            }
        } else if o.contains_key("expect_closed") {
            let deadline = timed(Instant::now());
            let (n, c) = self.conn(s, "expect_closed")?;
            while c.closed.is_none() && c.inbox.is_empty() && Instant::now() < deadline {
                c.pump(deadline);
            }
            c.drain();
            if !c.inbox.is_empty() || c.closed.is_none() {
                return Err(format!(
                    "expected connection {n} to be closed, got {}",
                    c.describe()
                ));
            }
        } else if o.contains_key("expect_nothing") {
            let quiet = self.opts.quiet;
            let (n, c) = self.conn(s, "expect_nothing")?;
            let until = match advanced_to {
                Some(t) => t,
                None => {
                    let until = Instant::now() + quiet;
                    while c.pump(until) {}
                    until
                }
            };
            c.drain();
            let early = c.inbox.iter().any(|(t, _)| *t <= until)
                || c.closed.as_ref().is_some_and(|(t, _)| *t <= until);
            if early {
                return Err(format!(
                    "expected nothing on connection {n}, got {}",
                    c.describe()
                ));
            }
        } else if let Some(ms) = s.get("advance_ms").and_then(Value::as_u64) {
            let until = Instant::now() + Duration::from_millis(ms);
            std::thread::sleep(Duration::from_millis(ms));
            self.advanced_to = Some(until);
        } else if o.contains_key("close") {
            let (_, c) = self.conn(s, "close")?;
            let _ = c.stream.shutdown(Shutdown::Both);
            c.dropped = true;
        } else if let Some(names) = s.get("distinct").and_then(Value::as_array) {
            let mut values = Vec::new();
            for n in names {
                let n = n.as_str().unwrap_or_default();
                values.push(
                    self.vars
                        .get(n)
                        .ok_or_else(|| format!("unbound {n}"))?
                        .to_string(),
                );
            }
            let set: BTreeSet<&String> = values.iter().collect();
            if set.len() != values.len() {
                return Err(format!("expected {names:?} to differ, got {values:?}"));
            }
        } else {
            return Err(format!("unknown step {s}"));
        }
        Ok(())
    }

    /// Disconnects what is open and undoes what the vector left on the broker.
    fn cleanup(&mut self) {
        for c in self.conns.values_mut() {
            if !c.dropped && c.closed.is_none() {
                let _ = c.stream.write_all(&[0xe0, 0x00]);
            }
            let _ = c.stream.shutdown(Shutdown::Write);
        }
        self.conns.clear();
        let persistent = std::mem::take(&mut self.persistent);
        let retained = std::mem::take(&mut self.retained);
        let clean = |id: &str, then: &[Vec<u8>]| {
            let connect = json!({"type": "CONNECT", "client_id": id, "clean_session": true, "keep_alive": 30});
            let Ok(bytes) =
                packet_from_json(&connect).and_then(|p| p.to_bytes().map_err(|e| format!("{e:?}")))
            else {
                return;
            };
            let Ok(mut c) = Conn::open(&self.addr, self.opts.timeout) else {
                return;
            };
            let _ = c.stream.write_all(&bytes);
            let deadline = Instant::now() + self.opts.timeout;
            while c.inbox.is_empty() && c.closed.is_none() && c.pump(deadline) {}
            for b in then {
                let _ = c.stream.write_all(b);
            }
            let _ = c.stream.write_all(&[0xe0, 0x00]);
            let deadline = Instant::now() + self.opts.timeout;
            while c.closed.is_none() && c.pump(deadline) {}
        };
        for id in persistent {
            clean(&id, &[]);
        }
        if self.opts.profile != "aws-iot" && !retained.is_empty() {
            // AWS IoT Core today refuses RETAIN on its reserved `$` topics (the vector
            // that tries it expects the close), so there is nothing there to clear.
            let reserved = self.opts.profile == "aws-iot-2025";
            let clears: Vec<Vec<u8>> = retained
                .iter()
                .filter(|t| !(reserved && t.starts_with('$')))
                .filter_map(|t| {
                    let p = json!({"type": "PUBLISH", "topic": t, "retain": true, "qos": 0, "payload_hex": ""});
                    packet_from_json(&p).ok()?.to_bytes().ok().map(|b| b.to_vec())
                })
                .collect();
            clean(&format!("{}conformance-cleanup", self.prefix), &clears);
        }
    }
}

/// How long the checker waits between connections with one client id under a profile
/// with a CONNECT quota per client id.
const CONNECT_QUOTA_PAUSE: Duration = Duration::from_millis(1100);

/// Why a vector is not played by default, if it is not.
fn skip_reason(v: &Value, slow: bool) -> Option<String> {
    if let Some(setup) = v.get("setup").and_then(Value::as_object) {
        let keys: Vec<&str> = setup.keys().map(String::as_str).collect();
        return Some(format!(
            "needs broker configuration ({}); configure the broker as the vector's setup says and name it with --only",
            keys.join(", ")
        ));
    }
    let advance: u64 = v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("advance_ms").and_then(Value::as_u64))
        .sum();
    if advance > MAX_ADVANCE_MS && !slow {
        return Some(format!(
            "needs {:.1} s of real time (advance_ms); --slow or --only plays it",
            advance as f64 / 1000.0
        ));
    }
    None
}

fn load(dir: &std::path::Path) -> Vec<Value> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            eprintln!("{}: {e}", dir.display());
            std::process::exit(2)
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            serde_json::from_str(&text)
                .map(|v: Value| expand(&v))
                .unwrap_or_else(|e| {
                    eprintln!("{}: {e}", p.display());
                    std::process::exit(2)
                })
                .unwrap_or_else(|e| {
                    eprintln!("{}: {e}", p.display());
                    std::process::exit(2)
                })
        })
        .collect()
}

/// Plays the broker vectors of `opts.profile` (or those named with `--only`).
pub fn run(opts: &Options, common: &Common, report: &mut Report) {
    let dir = opts.dir.clone().unwrap_or_else(|| {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("spec-vectors/scenarios/broker")
    });
    let all = load(&dir);
    let id_of = |v: &Value| v["id"].as_str().unwrap_or_default().to_string();
    for o in &common.only {
        if !all.iter().any(|v| id_of(v) == *o) {
            eprintln!("--only: no broker vector {o:?}");
            std::process::exit(2);
        }
    }
    let addr = match (opts.host.as_str(), opts.port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => a,
        None => {
            eprintln!("cannot resolve {}:{}", opts.host, opts.port);
            std::process::exit(2)
        }
    };
    let run_prefix = opts.prefix.clone().unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("cf{:x}{:x}-", std::process::id(), t % 0xfff_ffff)
    });
    println!(
        "broker {addr}, profile {}, prefix {run_prefix:?}",
        opts.profile
    );
    let mut selected: Vec<&Value> = all
        .iter()
        .filter(|v| {
            if common.only.is_empty() {
                v["profile"] == opts.profile.as_str()
            } else {
                common.only.contains(&id_of(v))
            }
        })
        .collect();
    // Vectors without a prefix first: they may subscribe to `#`.
    selected.sort_by_key(|v| v.get("prefixable").and_then(Value::as_bool).unwrap_or(true));
    for v in selected {
        let id = id_of(v);
        let rules: Vec<String> = v["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(String::from))
            .collect();
        if common.only.is_empty() {
            if let Some(why) = skip_reason(v, opts.slow) {
                report.add(Entry {
                    id,
                    rules,
                    outcome: Outcome::Skip,
                    detail: why,
                    millis: 0,
                });
                continue;
            }
        }
        let prefixable = v.get("prefixable").and_then(Value::as_bool).unwrap_or(true);
        let mut player = Player {
            opts,
            addr,
            prefix: if prefixable {
                run_prefix.clone()
            } else {
                String::new()
            },
            conns: BTreeMap::new(),
            vars: BTreeMap::new(),
            advanced_to: None,
            retained: BTreeSet::new(),
            persistent: BTreeSet::new(),
        };
        let start = Instant::now();
        let mut failure = None;
        for (i, s) in v["steps"].as_array().into_iter().flatten().enumerate() {
            if let Err(e) = player.step(s) {
                failure = Some(format!("step {i} {s}: {e}"));
                break;
            }
        }
        let millis = start.elapsed().as_millis();
        // AWS IoT Core today takes one CONNECT per second per client id, and the
        // clean-up and the next vector may reuse the ids just connected.
        let throttled = opts.profile == "aws-iot-2025";
        if throttled {
            std::thread::sleep(CONNECT_QUOTA_PAUSE);
        }
        player.cleanup();
        if throttled {
            std::thread::sleep(CONNECT_QUOTA_PAUSE);
        }
        let (outcome, detail) = match failure {
            None => (Outcome::Pass, String::new()),
            Some(d) => (Outcome::Fail, d),
        };
        report.add(Entry {
            id,
            rules,
            outcome,
            detail,
            millis,
        });
    }
}
