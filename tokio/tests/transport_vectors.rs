//! The transport checks listed in `spec-vectors/transport/` name tests of this crate;
//! every named test must exist, so the coverage table counts only real checks.

use std::path::Path;

#[test]
fn every_transport_check_names_a_test_that_exists_in_this_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("spec-vectors/transport");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("spec-vectors/transport") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        for check in json["checks"].as_array().expect("a checks array") {
            let id = check["id"].as_str().expect("an id");
            assert!(
                check["rules"].as_array().is_some_and(|r| !r.is_empty()),
                "{id}: no rules"
            );
            let test = check["test"].as_str().expect("a test");
            let (file, name) = test.split_once("::").expect("FILE::TEST");
            let source = std::fs::read_to_string(root.join(file))
                .unwrap_or_else(|e| panic!("{id}: {file}: {e}"));
            assert!(
                source.contains(&format!("async fn {name}()"))
                    || source.contains(&format!("fn {name}()")),
                "{id}: no test {name} in {file}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 7, "only {checked} checks found");
}
