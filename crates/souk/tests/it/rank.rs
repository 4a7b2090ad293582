//! `souk eval --protocol open-bandit` as a user runs it, on the checked-in synthetic log.

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
