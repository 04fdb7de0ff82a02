//! Results, the printed lines, totals per normative id, and the JSON report.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

/// What happened to one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Played, and everything matched.
    Pass,
    /// Played, and something differed.
    Fail,
    /// Failed, as the `--known` report says it does.
    Known,
    /// Not played (the reason says why).
    Skip,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Known => "known",
            Outcome::Skip => "skip",
        }
    }
}

/// The result of one vector.
pub struct Entry {
    pub id: String,
    pub rules: Vec<String>,
    pub outcome: Outcome,
    /// For a failure: the step and what was expected and what arrived; for a skip: why.
    pub detail: String,
    /// Wall time the vector took, in milliseconds.
    pub millis: u128,
}

/// All results of one run.
pub struct Report {
    mode: String,
    meta: Value,
    known: BTreeSet<String>,
    entries: Vec<Entry>,
}

impl Report {
    /// A report for `mode`; `known` is a previous JSON report whose failures are expected.
    pub fn new(mode: &str, meta: Value, known: Option<&Path>) -> Result<Report, String> {
        let mut set = BTreeSet::new();
        if let Some(path) = known {
            let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            for r in v["results"].as_array().ok_or("no results array")? {
                if matches!(r["outcome"].as_str(), Some("fail" | "known")) {
                    if let Some(id) = r["id"].as_str() {
                        set.insert(id.to_string());
                    }
                }
            }
        }
        Ok(Report {
            mode: mode.into(),
            meta,
            known: set,
            entries: Vec::new(),
        })
    }

    /// Records and prints one result.
    pub fn add(&mut self, mut e: Entry) {
        if e.outcome == Outcome::Fail && self.known.contains(&e.id) {
            e.outcome = Outcome::Known;
        }
        let tag = match e.outcome {
            Outcome::Pass => "PASS ",
            Outcome::Fail => "FAIL ",
            Outcome::Known => "KNOWN",
            Outcome::Skip => "SKIP ",
        };
        let mut line = format!("{tag} {} [{}]", e.id, e.rules.join(" "));
        if (e.outcome != Outcome::Pass && e.outcome != Outcome::Skip) || e.millis > 1000 {
            line.push_str(&format!(" ({} ms)", e.millis));
        }
        if !e.detail.is_empty() {
            line.push_str(": ");
            line.push_str(&e.detail);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        self.entries.push(e);
    }

    /// Whether every played vector passed (or failed as expected).
    pub fn ok(&self) -> bool {
        self.entries.iter().all(|e| e.outcome != Outcome::Fail)
    }

    fn totals(&self) -> BTreeMap<Outcome, usize> {
        let mut t = BTreeMap::new();
        for e in &self.entries {
            *t.entry(e.outcome).or_insert(0) += 1;
        }
        t
    }

    fn by_rule(&self) -> BTreeMap<String, BTreeMap<Outcome, usize>> {
        let mut m: BTreeMap<String, BTreeMap<Outcome, usize>> = BTreeMap::new();
        for e in &self.entries {
            for r in &e.rules {
                *m.entry(r.clone())
                    .or_default()
                    .entry(e.outcome)
                    .or_insert(0) += 1;
            }
        }
        m
    }

    fn counts(t: &BTreeMap<Outcome, usize>) -> String {
        [Outcome::Pass, Outcome::Fail, Outcome::Known, Outcome::Skip]
            .iter()
            .filter_map(|o| t.get(o).map(|n| format!("{n} {}", o.name())))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Prints the totals per normative id, then the overall totals.
    pub fn print(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "\ntotals by normative id:");
        for (rule, t) in self.by_rule() {
            let _ = writeln!(out, "  {rule:<16} {}", Self::counts(&t));
        }
        let _ = writeln!(
            out,
            "\n{}: {} vectors: {}",
            self.mode,
            self.entries.len(),
            Self::counts(&self.totals())
        );
    }

    /// The machine-readable report.
    pub fn to_json(&self) -> String {
        let results: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "rules": e.rules,
                    "outcome": e.outcome.name(),
                    "detail": e.detail,
                })
            })
            .collect();
        let name = |t: &BTreeMap<Outcome, usize>| -> Value {
            t.iter()
                .map(|(o, n)| (o.name().to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let by_rule: serde_json::Map<String, Value> = self
            .by_rule()
            .iter()
            .map(|(r, t)| (r.clone(), name(t)))
            .collect();
        // One result per line keeps the file readable and its diffs small.
        let mut s = format!(
            "{{\"mode\":{},\"meta\":{},\"totals\":{},\n\"results\":[\n",
            json!(self.mode),
            self.meta,
            name(&self.totals())
        );
        for (i, r) in results.iter().enumerate() {
            s.push_str(&r.to_string());
            s.push_str(if i + 1 < results.len() { ",\n" } else { "\n" });
        }
        s.push_str("],\n\"by_rule\":");
        s.push_str(&Value::Object(by_rule).to_string());
        s.push('}');
        s
    }
}
