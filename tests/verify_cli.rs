//! `nncheck verify` and the main job, as a new user runs them: exit codes and the
//! documented JSON schema (one record per check: check, subject, observed, bound,
//! alpha, detectable, pass).

use std::process::Command;

fn nncheck(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nncheck"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn verify_json_lists_every_check_with_a_passing_verdict() {
    let out = nncheck(&["verify", "--cases", "12", "--seed", "5", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(records.len() > 100);
    for r in &records {
        for key in [
            "check",
            "subject",
            "observed",
            "bound",
            "alpha",
            "detectable",
            "pass",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        assert_eq!(r["pass"], true, "{r}");
    }
    let names: std::collections::BTreeSet<_> = records
        .iter()
        .map(|r| r["check"].as_str().unwrap())
        .collect();
    assert!(names.len() >= 20, "{names:?}");
}

#[test]
fn the_main_job_reports_and_exits_zero() {
    let out = nncheck(&["--epochs", "1", "--rate", "0.3"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Answer: yes"), "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn an_invalid_rate_is_reported_not_panicked() {
    let out = nncheck(&["--rate", "1.5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("1.5"));
}

/// The README's excerpt of the report is what `cargo run --release` prints (seed 42,
/// rate 0.5, the defaults): every line of it appears verbatim in the real report.
#[test]
fn the_readme_excerpt_is_what_the_main_job_prints() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    let start = readme
        .find("An excerpt (seed 42, rate 0.5):")
        .expect("the README has the excerpt");
    let block = &readme[start..];
    let open = block
        .find("```text\n")
        .expect("the excerpt is a text block")
        + 8;
    let close = open + block[open..].find("```").expect("the block is closed");
    let out = nncheck(&[]);
    assert!(out.status.success());
    let report = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = block[open..close].lines().filter(|l| *l != "...").collect();
    assert!(lines.len() >= 5, "{lines:?}");
    for line in lines {
        assert!(
            report.lines().any(|r| r == line),
            "README line not in the report: {line}\n{report}"
        );
    }
}

/// The shards of a run, joined in order, are the unsharded run record for record:
/// same seeds, no case run twice, none left out.
#[test]
fn verify_shards_join_to_the_unsharded_run() {
    let records = |extra: &[&str]| -> Vec<serde_json::Value> {
        let mut args = vec!["verify", "--cases", "200", "--seed", "1", "--json"];
        args.extend_from_slice(extra);
        let out = nncheck(&args);
        assert!(out.status.success(), "verify {extra:?} failed");
        serde_json::from_slice(&out.stdout).expect("a JSON array")
    };
    let whole = records(&[]);
    let mut joined = Vec::new();
    let mut sizes = Vec::new();
    for k in 1..=4 {
        let shard = records(&["--shard", &format!("{k}/4")]);
        sizes.push(shard.len());
        joined.extend(shard);
    }
    assert!(
        sizes.iter().all(|&n| n > 0),
        "every shard runs cases: {sizes:?}"
    );
    assert_eq!(joined.len(), whole.len(), "record counts {sizes:?}");
    assert!(
        joined == whole,
        "the joined shards differ from the whole run"
    );
}

#[test]
fn a_malformed_shard_is_refused_by_name() {
    let out = nncheck(&["verify", "--cases", "2", "--shard", "1/4"]);
    assert_eq!(out.status.code(), Some(2), "an empty shard must not pass");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no case"));
    for bad in ["0/4", "5/4", "1/0", "two/4", "3"] {
        let out = nncheck(&["verify", "--cases", "2", "--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(bad), "--shard {bad}: {err}");
    }
}

/// `nncheck conform --json`, as a new user runs it: a verdict for every row and
/// every subject compiled in (nncheck always; candle-nn and burn with their
/// features), nncheck passing every row, and the question answered per model
/// subject. Run with `--features candle,burn` (as `.ci/run` does) this covers
/// the adapters too.
#[test]
fn conform_json_has_a_verdict_for_every_row_and_subject() {
    let out = nncheck(&["conform", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let board: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let subjects: Vec<&str> = board["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(subjects[0], "nncheck");
    for (name, feature) in [("candle-nn 0.11", "candle"), ("burn 0.22", "burn")] {
        let compiled = subjects.iter().any(|s| s.starts_with(name));
        let skipped = board["not_compiled"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n[1] == feature);
        assert!(
            compiled != skipped,
            "{name}: compiled {compiled}, listed as skipped {skipped}"
        );
        if skipped {
            println!("SKIPPED {name} column: built without the `{feature}` feature");
        }
    }
    let rows = board["rows"].as_array().unwrap();
    assert!(rows.len() >= 20, "{} rows", rows.len());
    assert!(
        rows.iter()
            .any(|r| r["check"] == "frozen_model_dropout_active_in_fit"),
        "the question's row"
    );
    // A subject runs a battery whole: where it has a verdict on one of the
    // battery's rows it has one on every row the battery always produces.
    use nncheck::check::run::battery;
    for records in [
        battery::dropout().records(),
        battery::noise().records(),
        battery::model().records(),
    ] {
        let battery_rows: Vec<_> = rows
            .iter()
            .filter(|r| records.iter().any(|spec| r["check"] == spec.id))
            .collect();
        let always = |row: &serde_json::Value| {
            records
                .iter()
                .any(|spec| row["check"] == spec.id && !spec.optional)
        };
        for (i, subject) in subjects.iter().enumerate() {
            let runs = battery_rows.iter().any(|r| !r["cells"][i].is_null());
            for row in battery_rows.iter().filter(|r| always(r)) {
                assert!(
                    !runs || !row["cells"][i].is_null(),
                    "{subject} runs the battery of {} but has no verdict on it",
                    row["check"]
                );
            }
        }
    }
    // nncheck's own subjects run every battery.
    for row in rows {
        let core = &row["cells"][0];
        let optional = row["check"] == "rate_one_drops_everything";
        assert!(
            optional || !core.is_null(),
            "nncheck has no verdict on {}",
            row["check"]
        );
    }
}

/// The expectations files the repository keeps for the adapters compiled in.
fn committed_expectations() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expectations");
    // The Python frameworks' files hold only where their environment is made.
    #[cfg(feature = "keras")]
    let keras = nncheck::conform::python::KERAS.ready().is_ok();
    #[cfg(not(feature = "keras"))]
    let keras = false;
    #[cfg(feature = "torch")]
    let torch = nncheck::conform::python::TORCH.ready().is_ok();
    #[cfg(not(feature = "torch"))]
    let torch = false;
    [
        (cfg!(feature = "candle"), "candle-nn-0.11.toml"),
        (cfg!(feature = "burn"), "burn-0.22.toml"),
        (keras, "keras-3.15.toml"),
        (torch, "pytorch-2.15.toml"),
    ]
    .into_iter()
    .filter(|(compiled, _)| *compiled)
    .map(|(_, file)| format!("{dir}/{file}"))
    .collect()
}

fn conform_expecting(files: &[String]) -> std::process::Output {
    let mut args = vec!["conform".to_string()];
    for f in files {
        args.extend(["--expect".to_string(), f.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    nncheck(&args)
}

/// `nncheck conform --expect` as another project's CI gate: with the
/// expectations the repository keeps (those of every adapter compiled in;
/// nncheck's own column needs none) it exits 0; with one expectation edited it
/// exits 1 and names the record.
#[test]
fn conform_meets_its_expectations_and_an_edited_one_fails_by_name() {
    let dir = std::env::temp_dir().join(format!("nncheck-expect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // nncheck's own column is held to "every row passes" by an empty file.
    let empty = dir.join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let mut files = committed_expectations();
    files.push(empty.display().to_string());
    let out = conform_expecting(&files);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("every verdict as expected"), "{err}");

    // One edit: nncheck's drop-rate row expected to fail.
    let edited = dir.join("edited.toml");
    std::fs::write(
        &edited,
        "[[expect]]\nsubject = \"nncheck\"\ncheck = \"drop_rate_binomial\"\nverdict = \"FAIL\"\nreason = \"an edit\"\n",
    )
    .unwrap();
    let mut with_edit = files.clone();
    with_edit.push(edited.display().to_string());
    let out = conform_expecting(&with_edit);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("unexpected pass: nncheck / drop_rate_binomial"),
        "{err}"
    );
    // An entry that matches nothing is an error, not a no-op.
    let stray = dir.join("stray.toml");
    std::fs::write(
        &stray,
        "[[expect]]\nsubject = \"no such framework\"\ncheck = \"*\"\nverdict = \"FAIL\"\nreason = \"a typo\"\n",
    )
    .unwrap();
    let out = conform_expecting(&[stray.display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("(no such framework / *) decides no record"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The README's measured comparison of frameworks is `nncheck conform
/// --markdown`: every column this build ran (candle-nn and burn at least; Keras
/// and PyTorch where their features and environments are here) has the
/// scoreboard's verdict in every row. (The figures are one run's: an
/// unseedable framework draws other masks each run, so only the verdicts are
/// held to the README.) A README column this build did not run is named as
/// skipped.
#[test]
fn the_readme_framework_table_has_the_scoreboards_verdicts() {
    if !cfg!(all(feature = "candle", feature = "burn")) {
        println!(
            "SKIPPED the_readme_framework_table_has_the_scoreboards_verdicts: needs --features candle,burn"
        );
        return;
    }
    let out = nncheck(&["conform", "--markdown"]);
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md is readable");
    // A row's cells, the verdict of each: the text before its first colon.
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|')
            .split(" | ")
            .map(|cell| cell.split(':').next().unwrap_or("").trim().to_string())
            .collect()
    };
    let mut lines = table.lines();
    let header = cells(lines.next().expect("a header"));
    let readme_header = readme
        .lines()
        .find(|l| l.starts_with("| check | nncheck |"))
        .map(cells)
        .expect("the README has the framework table");
    // For each column run here, its place in the README's table.
    let places: Vec<usize> = header
        .iter()
        .map(|column| {
            readme_header
                .iter()
                .position(|c| c == column)
                .unwrap_or_else(|| panic!("README's table lacks the column {column}"))
        })
        .collect();
    for column in readme_header.iter().filter(|c| !header.contains(c)) {
        println!("SKIPPED README column {column}: not run by this build");
    }
    for line in lines.skip(1) {
        let row = line.split(" | ").next().unwrap();
        let theirs = readme
            .lines()
            .find(|l| l.starts_with(row))
            .map(cells)
            .unwrap_or_else(|| panic!("README lacks the row {row}"));
        for (mine, &place) in cells(line).iter().zip(&places) {
            assert_eq!(
                &theirs[place], mine,
                "README row {row}, column {}: {line}",
                readme_header[place]
            );
        }
    }
}

/// `nncheck inspect` on the question's model prints the tree and the answer,
/// and `--audit` passes on it (exit 0); `--json` gives the same as records; a
/// file that is not a model exits 2 naming it; a model with a layer the core
/// lacks still prints its report and says why the audit did not run (exit 2).
#[test]
fn inspect_prints_the_tree_the_answer_and_an_audit_that_passes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_models");
    let question = format!("{dir}/question.keras");
    let out = nncheck(&["inspect", &question, "--audit"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "model_A/dropout (Dropout): trainable False, effective False; fit phase Train",
        "      fit:     drops 50% of units, scales the rest by 2",
        "The answer for this model:",
        "  weights fit can change: head/kernel, head/bias",
        "PASS frozen_weights_unchanged",
        "audit passed",
    ] {
        assert!(text.contains(line), "no `{line}` in\n{text}");
    }
    let out = nncheck(&["inspect", &question, "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["inspection"]["answer"]["active_in_frozen_parts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(json["audit"].is_null());

    let out = nncheck(&["inspect", &format!("{dir}/README.md")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("README.md: not a readable zip archive"));

    let out = nncheck(&[
        "inspect",
        &format!("{dir}/unsupported_layer.keras"),
        "--audit",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("The answer for this model:"), "{text}");
    assert!(
        text.contains("audit not run:") && text.contains("layer_norm (LayerNormalization)"),
        "{text}"
    );
}
