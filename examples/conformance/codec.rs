//! `codec` mode: the packet vectors, as hex lines, through an external decoder command.
//!
//! The command (run with `sh -c`) reads one hex packet per line on stdin and answers one
//! JSON line per input line: the packet's canonical JSON, `{"error":{"kind":..,"rule":..}}`
//! or `{"incomplete":{"needed":N}}` (`spec-vectors/SCHEMA.md`). Vectors with a
//! `max_packet_size` run in a separate invocation with `FLAG N` appended to the command
//! (`--size-flag`, default `--max-packet-size`; an empty flag skips them). The empty
//! input cannot be written as a line, so its vector is skipped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::Common;
use crate::canonical::to_hex;
use crate::report::{Entry, Outcome, Report};
use crate::vectors::{Expect, PacketVector, load_packet_vectors};

/// Runs `cmd` with `lines` on stdin; its stdout lines, or why it could not run.
fn invoke(cmd: &str, lines: &[String]) -> Result<Vec<String>, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start sh -c {cmd:?}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    // Written from a thread, so a decoder that answers while reading cannot deadlock.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let out: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let _ = writer.join();
    let _ = child.wait();
    Ok(out)
}

/// Compares one answer line with a vector's expectation; `None` when they agree.
fn compare(v: &PacketVector, answer: &str) -> Option<String> {
    let got: Value = match serde_json::from_str(answer) {
        Ok(g) => g,
        Err(e) => return Some(format!("answer is not JSON ({e}): {}", short(answer))),
    };
    let want = match &v.expect {
        Expect::Packet(p) => {
            return (got != *p)
                .then(|| format!("expected {}, got {}", short(&p.to_string()), short(answer)));
        }
        Expect::Error { kind, rule } => serde_json::json!({"error": {"kind": kind, "rule": rule}}),
        Expect::Incomplete(n) => {
            let needed = got.get("incomplete").map(|i| i.get("needed"));
            return match needed {
                // A decoder that reports no count is checked on the outcome alone.
                Some(None) => None,
                Some(Some(x)) if x.as_u64() == Some(*n as u64) => None,
                _ => Some(format!(
                    "expected {{\"incomplete\":{{\"needed\":{n}}}}}, got {}",
                    short(answer)
                )),
            };
        }
    };
    (got != want).then(|| format!("expected {want}, got {}", short(answer)))
}

fn short(s: &str) -> String {
    if s.len() <= 300 {
        s.to_string()
    } else {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    }
}

/// Plays the packet vectors against `cmd`.
pub fn run(cmd: &str, size_flag: &str, common: &Common, report: &mut Report) {
    let all = load_packet_vectors();
    let selected: Vec<&PacketVector> = all
        .iter()
        .filter(|v| common.only.is_empty() || common.only.contains(&v.id))
        .collect();
    for o in &common.only {
        if !all.iter().any(|v| v.id == *o) {
            eprintln!("--only: no packet vector {o:?}");
            std::process::exit(2);
        }
    }
    // One invocation per size limit (None: no limit).
    let mut groups: BTreeMap<Option<usize>, Vec<&PacketVector>> = BTreeMap::new();
    let mut skipped = Vec::new();
    for v in selected {
        if v.input.is_empty() {
            skipped.push((
                v,
                "the empty input cannot be written as a hex line".to_string(),
            ));
        } else if v.max_packet_size.is_some() && size_flag.is_empty() {
            skipped.push((v, "needs a size limit and --size-flag is empty".to_string()));
        } else {
            groups.entry(v.max_packet_size).or_default().push(v);
        }
    }
    let mut results: BTreeMap<&str, (Outcome, String, u128)> = BTreeMap::new();
    for (limit, vs) in &groups {
        let command = match limit {
            None => cmd.to_string(),
            Some(n) => format!("{cmd} {size_flag} {n}"),
        };
        let lines: Vec<String> = vs.iter().map(|v| to_hex(&v.input)).collect();
        let start = Instant::now();
        let batch = invoke(&command, &lines);
        let per = start.elapsed().as_millis() / vs.len().max(1) as u128;
        match batch {
            Ok(answers) if answers.len() == vs.len() => {
                for (v, a) in vs.iter().zip(&answers) {
                    let r = match compare(v, a) {
                        None => (Outcome::Pass, String::new(), per),
                        Some(d) => (Outcome::Fail, d, per),
                    };
                    results.insert(v.id.as_str(), r);
                }
            }
            Ok(answers) => {
                // Lines do not line up: one invocation per vector, to pin down which.
                eprintln!(
                    "{command}: {} answers for {} lines; running one vector at a time",
                    answers.len(),
                    vs.len()
                );
                for (v, line) in vs.iter().zip(&lines) {
                    let start = Instant::now();
                    let r = match invoke(&command, std::slice::from_ref(line)) {
                        Ok(a) if a.len() == 1 => match compare(v, &a[0]) {
                            None => (Outcome::Pass, String::new()),
                            Some(d) => (Outcome::Fail, d),
                        },
                        Ok(a) => (
                            Outcome::Fail,
                            format!("{} answer lines for one input line", a.len()),
                        ),
                        Err(e) => (Outcome::Fail, e),
                    };
                    results.insert(v.id.as_str(), (r.0, r.1, start.elapsed().as_millis()));
                }
            }
            Err(e) => {
                for v in vs {
                    results.insert(v.id.as_str(), (Outcome::Fail, e.clone(), 0));
                }
            }
        }
    }
    for (v, why) in skipped {
        results.insert(v.id.as_str(), (Outcome::Skip, why, 0));
    }
    // Report in file order.
    for v in &all {
        if let Some((outcome, detail, millis)) = results.remove(v.id.as_str()) {
            report.add(Entry {
                id: v.id.clone(),
                rules: v.rules.clone(),
                outcome,
                detail,
                millis,
            });
        }
    }
}
