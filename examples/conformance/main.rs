//! A conformance checker that runs the spec vectors (`spec-vectors/`) against any MQTT
//! 3.1.1 implementation.
//!
//! ```text
//! cargo run --release --example conformance -- broker --host 127.0.0.1 --port 1883 \
//!     [--profile mqtt311|aws-iot|aws-iot-2025] [--only ID ...] [--slow] [--json FILE] [--known FILE]
//! cargo run --release --example conformance -- codec --decoder 'COMMAND' [--json FILE]
//! ```
//!
//! `broker` plays the client side of every broker scenario vector
//! (`spec-vectors/scenarios/broker/`, format in `spec-vectors/scenarios/BROKER.md`) over
//! TCP. `codec` feeds the packet vectors (`spec-vectors/packets/`, format in
//! `spec-vectors/SCHEMA.md`) as hex lines to an external decoder command that answers
//! one JSON line per packet, as `cargo run --example decode` does.
//!
//! One line per vector (`PASS`, `FAIL`, `SKIP`, or `KNOWN` for a failure listed in the
//! `--known` report), then totals per normative id. The exit status is 0 only when
//! every played vector passed (or failed as `--known` says), 1 otherwise, 2 on usage
//! errors.

#[path = "../../tests/support/canonical.rs"]
mod canonical;
#[path = "../../tests/support/vectors.rs"]
mod vectors;

mod codec;
mod report;
mod scenario;

use std::path::PathBuf;
use std::time::Duration;

use report::Report;

const USAGE: &str = "usage:
  conformance broker --host H --port P [--profile mqtt311|aws-iot|aws-iot-2025] [--only ID ...]
                     [--slow] [--timeout-ms N] [--late-ms N] [--quiet-ms N]
                     [--prefix S] [--vectors DIR]
                     [--json FILE] [--known FILE]
  conformance codec --decoder 'COMMAND' [--only ID ...] [--size-flag FLAG]
                    [--json FILE] [--known FILE]";

fn usage(msg: &str) -> ! {
    eprintln!("{msg}\n{USAGE}");
    std::process::exit(2)
}

/// Options shared by both modes.
pub struct Common {
    /// Vector ids named with `--only` (empty: all).
    pub only: Vec<String>,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// A previous JSON report whose failures are expected.
    pub known: Option<PathBuf>,
}

fn value(args: &mut std::iter::Peekable<impl Iterator<Item = String>>, flag: &str) -> String {
    args.next()
        .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
}

fn number(args: &mut std::iter::Peekable<impl Iterator<Item = String>>, flag: &str) -> u64 {
    value(args, flag)
        .parse()
        .unwrap_or_else(|_| usage(&format!("{flag} needs a number")))
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mode = args.next().unwrap_or_else(|| usage("no mode"));
    let mut common = Common {
        only: Vec::new(),
        json: None,
        known: None,
    };
    let mut broker = scenario::Options {
        host: String::new(),
        port: 0,
        profile: "mqtt311".into(),
        slow: false,
        timeout: Duration::from_millis(3000),
        quiet: Duration::from_millis(200),
        late: Duration::from_millis(1000),
        prefix: None,
        dir: None,
    };
    let mut decoder = None;
    let mut size_flag = "--max-packet-size".to_string();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => {
                common.only.push(value(&mut args, "--only"));
                while let Some(next) = args.next_if(|n| !n.starts_with("--")) {
                    common.only.push(next);
                }
            }
            "--json" => common.json = Some(value(&mut args, "--json").into()),
            "--known" => common.known = Some(value(&mut args, "--known").into()),
            "--host" if mode == "broker" => broker.host = value(&mut args, "--host"),
            "--port" if mode == "broker" => {
                broker.port = u16::try_from(number(&mut args, "--port"))
                    .unwrap_or_else(|_| usage("--port out of range"))
            }
            "--profile" if mode == "broker" => {
                broker.profile = value(&mut args, "--profile");
                if !mqtt_sansio::Profile::NAMES.contains(&broker.profile.as_str()) {
                    usage("--profile is mqtt311, aws-iot or aws-iot-2025");
                }
            }
            "--slow" if mode == "broker" => broker.slow = true,
            "--timeout-ms" if mode == "broker" => {
                broker.timeout = Duration::from_millis(number(&mut args, "--timeout-ms"))
            }
            "--quiet-ms" if mode == "broker" => {
                broker.quiet = Duration::from_millis(number(&mut args, "--quiet-ms"))
            }
            "--late-ms" if mode == "broker" => {
                broker.late = Duration::from_millis(number(&mut args, "--late-ms"))
            }
            "--prefix" if mode == "broker" => {
                let p = value(&mut args, "--prefix");
                if p.contains(['/', '+', '#', '$']) {
                    usage("--prefix must not contain / + # $");
                }
                broker.prefix = Some(p);
            }
            "--vectors" if mode == "broker" => {
                broker.dir = Some(value(&mut args, "--vectors").into())
            }
            "--decoder" if mode == "codec" => decoder = Some(value(&mut args, "--decoder")),
            "--size-flag" if mode == "codec" => size_flag = value(&mut args, "--size-flag"),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let meta = match mode.as_str() {
        "broker" => {
            if broker.host.is_empty() || broker.port == 0 {
                usage("broker needs --host and --port");
            }
            serde_json::json!({"host": broker.host, "profile": broker.profile})
        }
        "codec" => serde_json::json!({"decoder": decoder}),
        other => usage(&format!("unknown mode {other:?}")),
    };
    let mut report = Report::new(&mode, meta, common.known.as_deref()).unwrap_or_else(|e| {
        eprintln!("--known: {e}");
        std::process::exit(2)
    });
    if mode == "broker" {
        scenario::run(&broker, &common, &mut report);
    } else {
        let cmd = decoder.unwrap_or_else(|| usage("codec needs --decoder"));
        codec::run(&cmd, &size_flag, &common, &mut report);
    }
    finish(&report, &common)
}

fn finish(report: &Report, common: &Common) -> ! {
    report.print();
    if let Some(path) = &common.json {
        if let Err(e) = std::fs::write(path, report.to_json() + "\n") {
            eprintln!("{}: {e}", path.display());
            std::process::exit(2);
        }
    }
    std::process::exit(if report.ok() { 0 } else { 1 })
}
