//! `souk eval --protocol open-bandit` and `--protocol ope` as a user runs them, on the
//! checked-in synthetic log.

use serde_json::Value;

use crate::{run_ok, souk};

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/rank/obd")
}

#[test]
fn open_bandit_eval_prints_the_contract_shape() {
    let data = tempfile::tempdir().unwrap();
    let output = run_ok(
        souk()
            .arg("--data-dir")
            .arg(data.path())
            .args(["eval", "--protocol", "open-bandit", "--json", "--param", "ftrl.bits=12", "--path"])
            .arg(fixture()),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["protocol"], "open-bandit");
    assert_eq!(report["dataset"]["rows"], 14);
    assert_eq!(report["dataset"]["clicks"], 4);
    assert_eq!(report["dataset"]["split"]["train_rows"], 10);
    let models: Vec<&str> =
        report["results"].as_array().unwrap().iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["ftrl", "popularity-by-position"]);
    assert_eq!(report["results"][0]["params"]["bits"], 12);
    for result in report["results"].as_array().unwrap() {
        assert!(result["train_seconds"].is_number());
        for key in ["auc", "log_loss", "mean_predicted", "observed_ctr"] {
            assert!(result["metrics"][key].is_number(), "{key} missing in {result}");
        }
    }
}

#[test]
fn open_bandit_eval_names_what_is_missing() {
    let data = tempfile::tempdir().unwrap();
    let output =
        souk().arg("--data-dir").arg(data.path()).args(["eval", "--protocol", "open-bandit"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--protocol open-bandit needs --path DIR"), "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let output = souk()
        .arg("--data-dir")
        .arg(data.path())
        .args(["eval", "--protocol", "open-bandit", "--path"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("item_context.csv"), "{stderr}");
}

/// A policy file showing item 2 in every round's logged slot.
fn write_policy(dir: &std::path::Path) -> std::path::PathBuf {
    let log = std::fs::read_to_string(fixture().join("log.csv")).unwrap();
    let mut text = String::from("round,position,item,probability\n");
    for (round, line) in log.lines().skip(1).enumerate() {
        let position = line.split(',').nth(3).unwrap();
        text.push_str(&format!("{round},{position},2,1\n"));
    }
    let path = dir.join("policy.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn ope_eval_prints_the_contract_shape() {
    let data = tempfile::tempdir().unwrap();
    let policy = write_policy(data.path());
    let output = run_ok(
        souk()
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .args(["eval", "--protocol", "ope", "--json", "--param", "ftrl.bits=12", "--policy"])
            .arg(&policy)
            .arg("--path")
            .arg(fixture()),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["protocol"], "ope");
    assert_eq!(report["rounds"], 14);
    let estimates = report["estimates"].as_array().unwrap();
    let names: Vec<&str> = estimates.iter().map(|e| e["estimator"].as_str().unwrap()).collect();
    assert_eq!(names, ["ipw", "snipw", "dm", "dr"]);
    // Item 2 was logged 4 times, 3 of them clicked, each with propensity 0.25: IPW is
    // 3 × 4 / 14 and SNIPW 3 × 4 / (4 × 4).
    assert!((estimates[0]["value"].as_f64().unwrap() - 12.0 / 14.0).abs() < 1e-12, "{report}");
    assert!((estimates[1]["value"].as_f64().unwrap() - 0.75).abs() < 1e-12, "{report}");
    for e in estimates {
        let ci = e["ci"].as_array().unwrap();
        assert!(ci[0].as_f64().unwrap() <= ci[1].as_f64().unwrap(), "{e}");
    }
}

#[test]
fn ope_eval_names_what_is_missing_or_wrong() {
    let data = tempfile::tempdir().unwrap();
    let output = souk()
        .arg("--data-dir")
        .arg(data.path())
        .args(["eval", "--protocol", "ope", "--path"])
        .arg(fixture())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--protocol ope needs --path DIR") && stderr.contains("--policy FILE"), "{stderr}");

    let bad = data.path().join("bad.csv");
    std::fs::write(&bad, "round,position,item,probability\n0,1,77,1\n").unwrap();
    let output = souk()
        .arg("--data-dir")
        .arg(data.path())
        .args(["eval", "--protocol", "ope", "--path"])
        .arg(fixture())
        .arg("--policy")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reading the policy file") && stderr.contains("item 77 is not in"), "{stderr}");
}
