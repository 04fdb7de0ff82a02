//! Which normative statements the spec vectors cover.
//!
//! Shared by `tests/coverage.rs` and `cargo run --example coverage` (included by path).
//! Reads `spec-vectors/normative.tsv` and every vector under `spec-vectors/`: any JSON
//! object with a string `id` and an array `rules`, in any `*.json` file other than the
//! JSON Schema files (`*.schema.json`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The layers whose checkable statements must each have at least one vector. A layer is
/// added here once its vectors exist.
pub const ENFORCED_LAYERS: &[&str] = &["codec", "client", "server", "broker", "transport"];

/// Every layer a statement can belong to, in report order.
pub const LAYERS: &[&str] = &["codec", "client", "server", "broker", "transport", "other"];

/// One row of `spec-vectors/normative.tsv`.
#[derive(Debug, Clone)]
pub struct Statement {
    pub id: String,
    pub section: String,
    pub layer: String,
    /// Whether the statement can be checked without I/O (by feeding bytes and events).
    pub checkable: bool,
    /// Why not, when it cannot.
    pub reason: String,
    pub description: String,
}

/// A vector: where it is, its id and the rules it names.
#[derive(Debug, Clone)]
pub struct Tagged {
    pub file: String,
    pub id: String,
    pub rules: Vec<String>,
}

/// Parses the normative table.
pub fn parse_statements(tsv: &str) -> Result<Vec<Statement>, String> {
    let mut lines = tsv.lines();
    let header = lines.next().ok_or("empty table")?;
    if header != "id\tsection\tlayer\tchecked_sans_io\treason\tdescription" {
        return Err(format!("unexpected header {header:?}"));
    }
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line.split('\t').collect();
        let [id, section, layer, checked, reason, description] = f[..] else {
            return Err(format!("line {}: {} columns", n + 2, f.len()));
        };
        let checkable = match checked {
            "yes" => true,
            "no" => false,
            other => return Err(format!("{id}: checked_sans_io {other:?}")),
        };
        out.push(Statement {
            id: id.to_owned(),
            section: section.to_owned(),
            layer: layer.to_owned(),
            checkable,
            reason: reason.to_owned(),
            description: description.to_owned(),
        });
    }
    Ok(out)
}

/// The rows of `<dir>/normative.tsv`.
pub fn load_statements(dir: &Path) -> Vec<Statement> {
    let path = dir.join("normative.tsv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_statements(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            json_files(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".json") && !n.ends_with(".schema.json"))
        {
            out.push(p);
        }
    }
}

fn find_vectors(v: &Value, file: &str, out: &mut Vec<Tagged>) {
    match v {
        Value::Object(m) => {
            if let (Some(Value::String(id)), Some(Value::Array(rules))) =
                (m.get("id"), m.get("rules"))
            {
                out.push(Tagged {
                    file: file.to_owned(),
                    id: id.clone(),
                    rules: rules
                        .iter()
                        .map(|r| r.as_str().unwrap_or("<not a string>").to_owned())
                        .collect(),
                });
            }
            m.values().for_each(|v| find_vectors(v, file, out));
        }
        Value::Array(a) => a.iter().for_each(|v| find_vectors(v, file, out)),
        _ => {}
    }
}

/// Every vector under `dir`, files in name order.
pub fn load_vectors(dir: &Path) -> Vec<Tagged> {
    let mut files = Vec::new();
    json_files(dir, &mut files);
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let name = f.strip_prefix(dir).unwrap_or(&f).display().to_string();
        find_vectors(&v, &name, &mut out);
    }
    out
}

/// Whether `r` has the form of a section reference: `§` and dotted numbers.
pub fn is_section(r: &str) -> bool {
    r.strip_prefix('§').is_some_and(|s| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The `(vector, rule)` pairs whose rule is neither a statement of the table nor a
/// section reference.
pub fn unknown_rules(statements: &[Statement], vectors: &[Tagged]) -> Vec<(String, String)> {
    let ids: std::collections::BTreeSet<&str> = statements.iter().map(|s| s.id.as_str()).collect();
    vectors
        .iter()
        .flat_map(|v| v.rules.iter().map(move |r| (v, r)))
        .filter(|(_, r)| !ids.contains(r.as_str()) && !is_section(r))
        .map(|(v, r)| (format!("{}: {}", v.file, v.id), r.clone()))
        .collect()
}

/// For each statement id, the ids of the vectors that name it.
pub fn coverage<'a>(
    statements: &'a [Statement],
    vectors: &'a [Tagged],
) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = statements
        .iter()
        .map(|s| (s.id.as_str(), Vec::new()))
        .collect();
    for v in vectors {
        for r in &v.rules {
            if let Some(list) = map.get_mut(r.as_str()) {
                list.push(v.id.as_str());
            }
        }
    }
    map
}

/// The checkable statements of `layers` without any vector.
pub fn missing<'a>(
    statements: &'a [Statement],
    vectors: &'a [Tagged],
    layers: &[&str],
) -> Vec<&'a Statement> {
    let cov = coverage(statements, vectors);
    statements
        .iter()
        .filter(|s| s.checkable && layers.contains(&s.layer.as_str()))
        .filter(|s| cov.get(s.id.as_str()).is_none_or(|v| v.is_empty()))
        .collect()
}

/// One layer's counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub layer: String,
    pub statements: usize,
    /// Checkable without I/O.
    pub checkable: usize,
    /// Checkable without I/O, with a vector.
    pub covered: usize,
    /// Not checkable without I/O, but named by a check that runs with I/O (the tokio
    /// crate's tests, listed under `spec-vectors/transport/`).
    pub covered_with_io: usize,
}

/// Per layer: the statements, how many are checkable, how many of those have a vector,
/// and how many of the others a check with I/O covers.
pub fn totals(statements: &[Statement], vectors: &[Tagged]) -> Vec<Totals> {
    let cov = coverage(statements, vectors);
    let has = |s: &Statement| cov.get(s.id.as_str()).is_some_and(|v| !v.is_empty());
    LAYERS
        .iter()
        .map(|&layer| {
            let rows: Vec<&Statement> = statements.iter().filter(|s| s.layer == layer).collect();
            Totals {
                layer: layer.to_owned(),
                statements: rows.len(),
                checkable: rows.iter().filter(|s| s.checkable).count(),
                covered: rows.iter().filter(|s| s.checkable && has(s)).count(),
                covered_with_io: rows.iter().filter(|s| !s.checkable && has(s)).count(),
            }
        })
        .collect()
}

/// The text `cargo run --example coverage` prints: one line per statement (id, layer,
/// number of vectors, their ids), or with `missing_only` only the checkable statements
/// without a vector; then the totals per layer.
pub fn report(statements: &[Statement], vectors: &[Tagged], missing_only: bool) -> String {
    let cov = coverage(statements, vectors);
    let mut out = String::new();
    for s in statements {
        let list = cov
            .get(s.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if missing_only && (!s.checkable || !list.is_empty()) {
            continue;
        }
        let what = if s.checkable {
            list.join(" ")
        } else if !list.is_empty() {
            format!("(checked with I/O) {}", list.join(" "))
        } else {
            format!("(not checkable without I/O: {})", s.reason)
        };
        out.push_str(&format!(
            "{:<14} {:<9} {:>4}  {}\n",
            s.id,
            s.layer,
            list.len(),
            what
        ));
    }
    out.push_str("\nlayer      statements  checkable  covered  with I/O\n");
    let (mut a, mut b, mut c, mut d) = (0, 0, 0, 0);
    for t in totals(statements, vectors) {
        let enforced = if ENFORCED_LAYERS.contains(&t.layer.as_str()) {
            "  (enforced)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<10} {:>10}  {:>9}  {:>7}  {:>8}{enforced}\n",
            t.layer, t.statements, t.checkable, t.covered, t.covered_with_io
        ));
        (a, b, c, d) = (
            a + t.statements,
            b + t.checkable,
            c + t.covered,
            d + t.covered_with_io,
        );
    }
    out.push_str(&format!("{:<10} {a:>10}  {b:>9}  {c:>7}  {d:>8}\n", "all"));
    out.push_str(&format!("{} vectors\n", vectors.len()));
    out
}
