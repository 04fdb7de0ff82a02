//! Decodes MQTT 3.1.1 packets and prints one JSON line per packet: the canonical JSON
//! of the spec vectors (`spec-vectors/SCHEMA.md`), `{"error":{"kind":..,"rule":..}}`, or
//! `{"incomplete":{"needed":N}}`.
//!
//! ```text
//! echo 3005000161ffff | cargo run --example decode
//! cargo run --example decode -- --raw < capture.bin
//! cargo run --example decode -- --max-packet-size 1024 < packets.hex
//! ```
//!
//! Without `--raw`, every non-blank stdin line not starting with `#` is hex (spaces
//! allowed), usually one packet; with `--raw`, stdin is one byte stream of packets back
//! to back. Decoding stops at the first error of a line (or of the stream), since the
//! bytes after a malformed packet cannot be framed. The exit status is 1 if any line was
//! not a packet.

#[path = "../tests/support/canonical.rs"]
mod canonical;
#[path = "../tests/support/decode_tool.rs"]
mod decode_tool;

use std::io::{Read, Write};

use mqtt_sansio::Decoder;

fn main() {
    let mut raw = false;
    let mut decoder = Decoder::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--raw" => raw = true,
            "--max-packet-size" => {
                let n = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
                    eprintln!("--max-packet-size needs a number");
                    std::process::exit(2)
                });
                decoder = decoder.with_max_packet_size(n);
            }
            _ => {
                eprintln!("usage: decode [--raw] [--max-packet-size N] < input");
                std::process::exit(2);
            }
        }
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("reading stdin: {e}");
        std::process::exit(2);
    }
    let lines = if raw {
        decode_tool::raw_lines(&decoder, &input)
    } else {
        decode_tool::hex_lines(&decoder, &String::from_utf8_lossy(&input))
    };
    let mut out = std::io::stdout().lock();
    for l in &lines {
        if writeln!(out, "{l}").is_err() {
            std::process::exit(2);
        }
    }
    if !lines.iter().all(|l| decode_tool::is_packet_line(l)) {
        std::process::exit(1);
    }
}
