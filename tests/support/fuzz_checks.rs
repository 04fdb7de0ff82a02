//! The checks the fuzz targets make, in one place: the targets under `fuzz/` include this
//! file by path, and `tests/fuzz_regressions.rs` replays saved inputs through it, so a
//! plain `cargo test` re-runs every input that once found a bug.
//!
//! Each check panics, naming the property, when the codec breaks it.

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use mqtt_sansio::{
    DecodeError, Decoder, FixedHeader, Packet, Status, decode, decode_bytes, decode_frame,
};

/// Most prefixes looked at one by one; longer inputs are sampled.
const PREFIX_BUDGET: usize = 512;

type Decoded<B> = Result<Status<Packet<B>>, DecodeError>;

/// FNV-1a: a seed taken from the whole input, so that every mutation also changes the
/// chunking and the size limit the checks pick.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// xorshift64: deterministic choices from a seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// The length of the minimal encoding of Remaining Length `n`.
fn remaining_length_len(n: usize) -> usize {
    match n {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// The fixed header at the start of `data`, if it is whole and valid.
fn header(data: &[u8]) -> Option<FixedHeader> {
    match Decoder::new().fixed_header(data) {
        Ok(Status::Complete(h, _)) => Some(h),
        _ => None,
    }
}

/// The prefix lengths to look at: all of `0..end` when there are few, otherwise both
/// ends and an even sample of the middle.
fn prefix_lengths(end: usize) -> Vec<usize> {
    if end <= PREFIX_BUDGET {
        return (0..end).collect();
    }
    let edge = PREFIX_BUDGET / 4;
    let step = (end - 2 * edge) / (PREFIX_BUDGET / 2) + 1;
    (0..edge)
        .chain((edge..end - edge).step_by(step))
        .chain(end - edge..end)
        .collect()
}

/// Every text, binary and payload field of a packet, as its bytes.
pub fn fields<B: AsRef<[u8]>>(p: &Packet<B>) -> Vec<&[u8]> {
    let mut out = Vec::new();
    match p {
        Packet::Connect(c) => {
            out.push(c.client_id.as_bytes());
            if let Some(w) = &c.will {
                out.push(w.topic.as_bytes());
                out.push(w.message.as_bytes());
            }
            if let Some(l) = &c.login {
                out.push(l.username.as_bytes());
                if let Some(pw) = &l.password {
                    out.push(pw.as_bytes());
                }
            }
        }
        Packet::Publish(p) => {
            out.push(p.topic.as_bytes());
            out.push(p.payload.as_ref());
        }
        Packet::Subscribe(s) => out.extend(s.filters().map(|(f, _)| f.into_inner())),
        Packet::Unsubscribe(s) => out.extend(s.filters().map(|f| f.into_inner())),
        _ => {}
    }
    out
}

/// Checks that every non-empty field of `p` lies inside `within`: decoding copied
/// nothing.
fn assert_fields_inside<B: AsRef<[u8]> + core::fmt::Debug>(
    p: &Packet<B>,
    within: core::ops::Range<usize>,
) {
    for f in fields(p).into_iter().filter(|f| !f.is_empty()) {
        let start = f.as_ptr() as usize;
        assert!(
            within.start <= start && start + f.len() <= within.end,
            "a field of {p:?} lies outside the input buffer"
        );
    }
}

/// The outcome of both decode forms on the same input must be the same, and the
/// zero-copy form leaves its buffer untouched unless it returns a packet.
fn assert_forms_agree(
    data: &[u8],
    borrowed: &Decoded<&[u8]>,
    shared: &Decoded<Bytes>,
    rest: &BytesMut,
) {
    match (borrowed, shared) {
        (Ok(Status::Complete(a, n)), Ok(Status::Complete(b, m))) => {
            assert_eq!(n, m, "decode and decode_bytes used different lengths");
            assert_eq!(&a.to_owned(), b, "decode and decode_bytes disagree");
            assert_eq!(
                &rest[..],
                &data[*n..],
                "decode_bytes did not remove exactly the packet"
            );
        }
        (a, b) => {
            let a = a.as_ref().map(|s| match s {
                Status::Incomplete(n) => Some(*n),
                Status::Complete(..) => None,
            });
            let b = b.as_ref().map(|s| match s {
                Status::Incomplete(n) => Some(*n),
                Status::Complete(..) => None,
            });
            assert_eq!(a, b, "decode and decode_bytes disagree");
            assert_eq!(
                &rest[..],
                data,
                "decode_bytes changed its buffer without a packet"
            );
        }
    }
}

/// A [`Frame`](mqtt_sansio::Frame) decoded from `data` lends the same packet as the
/// borrowed decode, shares every field without copying, and takes exactly its bytes.
fn assert_frame_agrees(data: &[u8], p: &Packet<&[u8]>, used: usize) {
    let mut buf = BytesMut::from(data);
    let frame = match decode_frame(&mut buf) {
        Ok(Status::Complete(frame, n)) => {
            assert_eq!(n, used, "decode and decode_frame used different lengths");
            frame
        }
        other => panic!("decode gave a packet, decode_frame gave {other:?}"),
    };
    assert_eq!(
        &buf[..],
        &data[used..],
        "decode_frame did not remove exactly the packet"
    );
    let lent = frame.packet();
    assert_eq!(&lent, p, "decode and decode_frame disagree");
    for field in fields(&lent) {
        let own = frame.share(field).expect("a lent field is shareable");
        assert_eq!(&own[..], field, "a shared field differs");
        assert!(
            field.is_empty() || own.as_ptr() == field.as_ptr(),
            "a shared field was copied"
        );
    }
    assert_eq!(&frame.into_packet(), &p.to_owned(), "into_packet differs");
}

/// A decoded packet re-encodes to bytes that decode to the same packet; for input whose
/// Remaining Length is in minimal form the re-encoding is the input itself.
fn assert_reencodes(data: &[u8], p: &Packet<&[u8]>, used: usize) {
    let enc = p.to_bytes().expect("a decoded packet must encode");
    assert_eq!(
        enc.len(),
        p.encoded_len(),
        "encoded_len is not the encoded length"
    );
    assert_eq!(
        p.to_owned().to_bytes().ok(),
        Some(enc.clone()),
        "borrowed and owned packets encode differently"
    );
    match decode(&enc) {
        Ok(Status::Complete(q, n)) => {
            assert_eq!(n, enc.len(), "the re-encoding is not exactly one packet");
            assert_eq!(&q, p, "the re-encoding decodes to another packet");
        }
        other => panic!("the re-encoding of {p:?} decodes to {other:?}"),
    }
    let h = header(data).expect("a decoded packet has a valid header");
    let body = &data[h.header_len..used];
    let enc_header = 1 + remaining_length_len(body.len());
    assert_eq!(enc[0], data[0], "the re-encoding changes the first byte");
    assert_eq!(&enc[enc_header..], body, "the re-encoding changes the body");
    if h.header_len == enc_header {
        assert_eq!(
            &enc[..],
            &data[..used],
            "minimal-form input is not reproduced"
        );
    }
}

/// The outcome for each prefix of the input must follow from the outcome for the whole:
/// a prefix of a packet is `Incomplete` without claiming more than the real shortfall
/// (exactly the shortfall once the header is known), and an error is final, so no
/// prefix of an erroring input returns a packet or another error.
fn assert_prefixes_consistent(data: &[u8], whole: &Decoded<&[u8]>) {
    let end = match whole {
        Ok(Status::Complete(_, used)) => *used,
        _ => data.len(),
    };
    let mut first_error: Option<usize> = None;
    for k in prefix_lengths(end) {
        let prefix = &data[..k];
        match decode(prefix) {
            Ok(Status::Incomplete(n)) => {
                assert!(n >= 1, "Incomplete(0) for a prefix of {k} bytes");
                if let Some(h) = header(prefix) {
                    assert_eq!(
                        n,
                        h.packet_len() - k,
                        "with the header known, Incomplete must be the exact shortfall"
                    );
                } else {
                    assert!(n <= 2, "Incomplete({n}) before the header is known");
                }
                if let Ok(Status::Complete(_, used)) = whole {
                    assert!(k + n <= *used, "Incomplete({n}) at {k} overshoots {used}");
                }
                assert!(
                    first_error.is_none(),
                    "a longer prefix is Incomplete after a shorter one failed"
                );
            }
            Ok(Status::Complete(p, n)) => {
                panic!("a strict prefix ({k} bytes) of the input decodes to {p:?} ({n})")
            }
            Err(e) => {
                assert_eq!(
                    whole.as_ref().err(),
                    Some(&e),
                    "a prefix fails with {e:?} but the whole input gives {whole:?}"
                );
                first_error.get_or_insert(k);
            }
        }
    }
}

/// Appending bytes to input that failed gives the same error.
fn assert_error_final(data: &[u8], e: DecodeError) {
    for tail in [&[0u8; 8][..], &[0xFF; 8][..], &[0x30, 0x00], data] {
        let mut longer = data.to_vec();
        longer.extend_from_slice(tail);
        assert_eq!(
            decode(&longer).err(),
            Some(e),
            "an error changed when bytes were appended"
        );
    }
}

/// Input that is `Incomplete(n)` cannot become a packet with fewer than `n` more bytes
/// (looked at when `n` is small enough to build the longer input cheaply).
fn assert_incomplete_needs(data: &[u8], n: usize) {
    if n > 1 << 16 {
        return;
    }
    for fill in [0u8, 0x7F, 0xFF] {
        let mut longer = data.to_vec();
        longer.resize(data.len() + n - 1, fill);
        assert!(
            !matches!(decode(&longer), Ok(Status::Complete(..))),
            "Incomplete({n}) became a packet with {} bytes fewer",
            n - 1
        );
    }
}

/// A decoder with a size limit refuses a larger packet as soon as the header shows its
/// size, and decodes everything else as the default decoder does.
fn assert_size_limit(data: &[u8], whole: &Decoded<&[u8]>, max: usize) {
    let limited = Decoder::new().with_max_packet_size(max);
    let got = limited.decode(data);
    match header(data) {
        Some(h) if h.packet_len() > max => {
            assert_eq!(
                got.err(),
                Some(DecodeError::PacketTooLarge),
                "limit {max} ignored"
            );
            assert_eq!(
                limited.decode(&data[..h.header_len]).err(),
                Some(DecodeError::PacketTooLarge),
                "the size limit waits for more than the header"
            );
        }
        _ => assert_eq!(
            &got, whole,
            "the size limit {max} changed a packet within it"
        ),
    }
}

/// Splits `data` into chunks whose sizes `rng` picks: byte by byte, small, medium or
/// large.
fn chunks<'d>(data: &'d [u8], rng: &mut Rng) -> Vec<&'d [u8]> {
    let max = match rng.range(0, 3) {
        0 if data.len() <= 4096 => 1,
        0 | 1 => 8,
        2 => 64,
        _ => 1024,
    };
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = rng.range(1, max).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// Feeding the input in chunks to a `BytesMut` and decoding packet by packet gives the
/// same packets, the same final error and the same leftover bytes as decoding the
/// whole input at once; after an error, more input gives the same error.
fn assert_stream(data: &[u8], rng: &mut Rng) {
    let mut whole = Vec::new();
    let mut off = 0;
    let whole_err = loop {
        match decode(&data[off..]) {
            Ok(Status::Complete(p, used)) => {
                whole.push(p.to_owned());
                off += used;
            }
            Ok(Status::Incomplete(_)) => break None,
            Err(e) => break Some(e),
        }
    };

    let mut acc = BytesMut::new();
    let mut got = Vec::new();
    let mut err = None;
    for chunk in chunks(data, rng) {
        acc.extend_from_slice(chunk);
        loop {
            match decode_bytes(&mut acc) {
                Ok(Status::Complete(p, _)) => {
                    assert!(err.is_none(), "a packet decoded after an error");
                    got.push(p);
                }
                Ok(Status::Incomplete(n)) => {
                    assert!(err.is_none(), "Incomplete({n}) after an error");
                    break;
                }
                Err(e) => {
                    assert!(err.is_none() || err == Some(e), "the stream error changed");
                    err = Some(e);
                    break;
                }
            }
        }
    }
    assert_eq!(
        got, whole,
        "chunked decoding gives other packets than whole decoding"
    );
    assert_eq!(
        err, whole_err,
        "chunked decoding ends otherwise than whole decoding"
    );
    assert_eq!(
        &acc[..],
        &data[off..],
        "chunked decoding leaves other bytes"
    );
}

/// The `decode` target: arbitrary bytes through both decode forms and a chunked stream.
/// Never a panic; the forms agree; what decodes re-encodes to the same packet; prefixes
/// and errors behave; a size limit is enforced from the header.
pub fn check_decode(data: &[u8]) {
    let mut rng = Rng::new(fnv(data));

    let borrowed = decode(data);
    let mut buf = BytesMut::from(data);
    let base = buf.as_ptr() as usize;
    let shared = decode_bytes(&mut buf);
    assert_forms_agree(data, &borrowed, &shared, &buf);

    match &borrowed {
        Ok(Status::Complete(p, used)) => {
            assert!(
                *used >= 2 && *used <= data.len(),
                "Complete used {used} bytes"
            );
            assert_reencodes(data, p, *used);
            let start = data.as_ptr() as usize;
            assert_fields_inside(p, start..start + data.len());
            if let Ok(Status::Complete(q, _)) = &shared {
                assert_fields_inside(q, base..base + data.len());
            }
            assert_frame_agrees(data, p, *used);
        }
        Ok(Status::Incomplete(n)) => assert_incomplete_needs(data, *n),
        Err(e) => {
            assert!(!e.rule().is_empty() && !e.kind().is_empty());
            assert_error_final(data, *e);
        }
    }
    assert_prefixes_consistent(data, &borrowed);

    let len = match &borrowed {
        Ok(Status::Complete(_, used)) => *used,
        _ => data.len(),
    };
    let max = match rng.range(0, 3) {
        0 => len.saturating_sub(1),
        1 => len,
        2 => rng.range(0, 16),
        _ => rng.range(0, len + 16),
    };
    assert_size_limit(data, &borrowed, max);

    assert_stream(data, &mut rng);
}

/// The `roundtrip` checks for one valid packet: it encodes, `encoded_len` is exact, both
/// decode forms give it back, trailing bytes are left alone, every strict prefix is
/// `Incomplete` with the exact shortfall once the header is known, and a size limit
/// just below it refuses it from the header alone.
pub fn check_packet(p: &Packet<Bytes>) {
    let mut prefixed = BytesMut::from(&b"xyz"[..]);
    p.encode(&mut prefixed).expect("a valid packet must encode");
    let enc = prefixed.split_off(3).freeze();
    assert_eq!(
        &prefixed[..],
        b"xyz",
        "encode touched bytes already in the buffer"
    );
    assert_eq!(
        enc.len(),
        p.encoded_len(),
        "encoded_len is not the encoded length"
    );
    assert_eq!(
        p.to_bytes().ok(),
        Some(enc.clone()),
        "to_bytes differs from encode"
    );

    match decode(&enc) {
        Ok(Status::Complete(q, n)) => {
            assert_eq!(n, enc.len(), "decode used another length");
            assert_eq!(&q.to_owned(), p, "decode gives another packet");
        }
        other => panic!("{p:?} decodes to {other:?}"),
    }
    let mut buf = BytesMut::from(&enc[..]);
    buf.extend_from_slice(&[0xC0, 0x00, 0xFF]);
    match decode_bytes(&mut buf) {
        Ok(Status::Complete(q, n)) => {
            assert_eq!(n, enc.len(), "decode_bytes used another length");
            assert_eq!(&q, p, "decode_bytes gives another packet");
            assert_eq!(&buf[..], &[0xC0, 0x00, 0xFF], "trailing bytes were touched");
        }
        other => panic!("{p:?} decodes zero-copy to {other:?}"),
    }
    if let Packet::Publish(publish) = p {
        let mut head = BytesMut::new();
        publish.encode_header(&mut head).expect("header encodes");
        head.extend_from_slice(&publish.payload);
        assert_eq!(
            &head[..],
            &enc[..],
            "encode_header + payload differs from encode"
        );
    }

    for k in prefix_lengths(enc.len()) {
        match decode(&enc[..k]) {
            Ok(Status::Incomplete(n)) => {
                assert!(
                    n >= 1 && k + n <= enc.len(),
                    "Incomplete({n}) at {k} of {}",
                    enc.len()
                );
                if header(&enc[..k]).is_some() {
                    assert_eq!(k + n, enc.len(), "inexact shortfall with the header known");
                }
            }
            other => panic!("a {k}-byte prefix of {p:?} gives {other:?}"),
        }
    }

    let h = header(&enc).expect("an encoded packet has a valid header");
    let tight = Decoder::new().with_max_packet_size(enc.len() - 1);
    assert_eq!(
        tight.decode(&enc[..h.header_len]).err(),
        Some(DecodeError::PacketTooLarge),
        "a packet one byte over the limit is not refused from its header"
    );
    assert!(
        matches!(
            Decoder::new().with_max_packet_size(enc.len()).decode(&enc),
            Ok(Status::Complete(_, n)) if n == enc.len()
        ),
        "a packet exactly at the limit is refused"
    );
}

/// The `roundtrip` target: the input builds an arbitrary valid packet (or several, as a
/// stream), and each must survive [`check_packet`]; the stream of them decodes to them.
pub fn check_roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut packets = Vec::new();
    while packets.len() < 4 {
        match Packet::<Bytes>::arbitrary(&mut u) {
            Ok(p) => packets.push(p),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    let mut stream = BytesMut::new();
    for p in &packets {
        check_packet(p);
        p.encode(&mut stream).expect("a valid packet must encode");
    }
    let mut decoded = Vec::new();
    while let Ok(Status::Complete(p, _)) = decode_bytes(&mut stream) {
        decoded.push(p);
    }
    assert_eq!(decoded, packets, "a stream of packets decodes to others");
    assert!(
        stream.is_empty(),
        "bytes left after a stream of whole packets"
    );
}
