//! Reports against known runs: every figure equals what the manifest expects, the JSON
//! matches its schema, ID numbers are masked, planted disagreements are each reported
//! once (exit 4), and drift between two runs whose sandbox answers differ is found.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::batch::{self, Batch};
use serde_json::Value;
use smile_recon::api::SubmitEndpoint;
use smile_recon::job_spec::RunMode;
use smile_recon::report::{self, Format, ReportOptions};
use smile_recon::runner::Layer;
use smile_recon::sandbox::Faults;
use smile_recon::store::Store;

const ALL: [Format; 4] = [Format::Json, Format::Csv, Format::Md, Format::Html];

fn write_reports(b: &Batch, run_id: i64, out: &Path, show_pii: bool) -> Value {
    let store = Store::open_read_only(&b.db).unwrap();
    report::write(
        &store,
        run_id,
        &ReportOptions {
            formats: ALL.to_vec(),
            out: out.to_owned(),
            show_pii,
            compare: None,
        },
    )
    .unwrap();
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn assert_valid_against_schema(summary: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/summary.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(summary)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "summary.json breaks its schema:\n{}",
        errors.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_figures_equal_what_the_manifest_expects() {
    let b = batch::setup(300, 51, Faults::default(), None).await;
    // Kept in clear, so that `--show-pii` below has something to show.
    let flags = Layer {
        keep_pii: Some(true),
        ..b.submit_flags(SubmitEndpoint::Verify)
    };
    let finished = b.run(b.request(RunMode::Submit, flags)).await;
    let out = b.dir.path().join("reports");
    let summary = write_reports(&b, finished.run_id, &out, false);
    assert_valid_against_schema(&summary);
    // The schema has teeth: a field it does not know, or a negative count, fails.
    let mut tampered = summary.clone();
    tampered["totals"]["surprise"] = Value::from(1);
    tampered["requests"]["retries"] = Value::from(-1);
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schemas/summary.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        jsonschema::validator_for(&schema)
            .unwrap()
            .iter_errors(&tampered)
            .count(),
        2
    );

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut refused = 0;
    for row in &b.generated.rows {
        // 1014 rows are refused before sending (invalid, with no ResultCode) when their
        // type has a published regex; the others are sent and the API answers 1014.
        if row.expected_result_code == "1014"
            && smile_recon::api::id_formats::check(&row.country, &row.id_type, &row.id_number)
                .is_err()
        {
            refused += 1;
            continue;
        }
        *expected
            .entry(row.expected_result_code.clone())
            .or_default() += 1;
    }
    assert!(refused > 0 && expected.len() >= 4, "{expected:?}");
    let got: BTreeMap<String, u64> = summary["result_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap().to_owned(),
                c["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(summary["totals"]["jobs"], 300);
    assert_eq!(
        summary["totals"]["by_state"]["invalid"].as_u64(),
        Some(refused)
    );
    let approved = expected.get("1020").unwrap_or(&0) + expected.get("1021").unwrap_or(&0);
    assert_eq!(
        summary["totals"]["by_category"]["Approved"].as_u64(),
        Some(approved)
    );
    let by_place: u64 = summary["by_country_id_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["jobs"].as_u64().unwrap())
        .sum();
    assert_eq!(by_place, 300);
    assert_eq!(summary["signatures"]["unconfirmed"], 0);
    assert_eq!(
        summary["signatures"]["confirmed"].as_u64(),
        Some(300 - refused)
    );
    assert_eq!(
        summary["requests"]["by_kind"]["submit"].as_u64(),
        Some(300 - refused)
    );
    assert!(summary["requests"]["latency_ms"]["p50"].as_i64().is_some());
    assert!(summary["drift"].is_null());

    // results.csv: one row per job; ID numbers masked.
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(results.lines().count(), 301);
    for row in &b.generated.rows {
        assert!(
            !results.contains(&format!(",{},", row.id_number)),
            "unmasked ID number on the row of {}",
            row.user_id
        );
    }
    let some = &b.generated.rows[0].id_number;
    let tail: String = some
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(results.contains(&format!("{}{tail}", "*".repeat(some.chars().count() - 4))));
    // ... unless asked.
    let pii = b.dir.path().join("pii");
    write_reports(&b, finished.run_id, &pii, true);
    let results = std::fs::read_to_string(pii.join("results.csv")).unwrap();
    assert!(results.contains(some.as_str()));

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("| jobs | 300 |"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Jobs by ResultCode"));
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("<link"));
    assert!(!html.contains(some.as_str()), "the HTML shows an ID number");
}

/// An audit's needs: Smile ID's own job reference on every result, invalid rows still
/// placed by country and id_type, and the summary saying which build, host, user and
/// command line ran the run and wrote the report, and whether it shows personal data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_complete_records_for_an_audit() {
    let b = batch::setup(120, 57, Faults::default(), None).await;
    let finished = b
        .run(b.request(RunMode::Submit, b.submit_flags(SubmitEndpoint::Verify)))
        .await;
    let out = b.dir.path().join("reports");
    let summary = write_reports(&b, finished.run_id, &out, false);
    assert_valid_against_schema(&summary);
    assert_eq!(summary["schema_version"], 2);
    assert_eq!(summary["pii_shown"], false);
    assert_eq!(
        summary["generated_by"]["tool_version"],
        env!("CARGO_PKG_VERSION")
    );
    let execution = &summary["run"]["executions"][0];
    for field in ["tool_version", "host", "os_user", "command_line"] {
        assert!(execution[field].is_string(), "{field}: {execution}");
    }
    assert!(
        summary["run"]["base_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("http://127.0.0.1:")),
        "{}",
        summary["run"]
    );

    let mut csv = csv::Reader::from_path(out.join("results.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (state, smile, country, id_type) = (
        col("state"),
        col("smile_job_id"),
        col("country"),
        col("id_type"),
    );
    let (mut done, mut invalid) = (0, 0);
    for record in csv.records() {
        let r = record.unwrap();
        match &r[state] {
            "done" => {
                done += 1;
                assert!(
                    !r[smile].is_empty(),
                    "a result without its SmileJobID: {r:?}"
                );
            }
            "invalid" => {
                invalid += 1;
                assert!(
                    !r[country].is_empty() && !r[id_type].is_empty(),
                    "an invalid row lost its place: {r:?}"
                );
            }
            _ => {}
        }
    }
    assert!(done > 0 && invalid > 0, "done {done}, invalid {invalid}");
    assert!(
        !summary["by_country_id_type"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["country"] == "-"),
        "{}",
        summary["by_country_id_type"]
    );
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(!md.contains("Personal data"), "{md}");

    let pii = b.dir.path().join("pii");
    let summary = write_reports(&b, finished.run_id, &pii, true);
    assert_eq!(summary["pii_shown"], true);
    for file in ["summary.md", "report.html"] {
        let text = std::fs::read_to_string(pii.join(file)).unwrap();
        assert!(text.contains("Personal data"), "{file} does not say it");
    }
}

/// `export --events` is the record of what ran: one line per request the sandbox saw
/// (the services lookup aside, which belongs to no job); `export` of the jobs has one row
/// per job, ID numbers masked unless `--show-pii`, and `--state` selects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_lists_every_request_and_every_job() {
    let b = batch::setup(80, 58, Faults::default(), None).await;
    let flags = Layer {
        keep_pii: Some(true),
        ..b.submit_flags(SubmitEndpoint::Verify)
    };
    let finished = b.run(b.request(RunMode::Submit, flags)).await;
    let run = finished.run_id.to_string();
    let db = b.db.to_str().unwrap();
    let seen: u64 = b
        .sandbox
        .stats()
        .requests_by_endpoint
        .iter()
        .filter(|(path, _)| !path.contains("services"))
        .flat_map(|(_, by_status)| by_status.values())
        .sum();
    assert!(seen >= 70, "the sandbox saw {seen} requests");

    let out = smile_recon(&["export", "--db", db, "--run", &run, "--events"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(report::export::EVENT_HEADER.join(",").as_str())
    );
    assert_eq!(lines.count() as u64, seen);

    let out = smile_recon(&[
        "export", "--db", db, "--run", &run, "--events", "--format", "jsonl",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count() as u64, seen);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in [
        "at",
        "kind",
        "http_status",
        "outcome",
        "latency_ms",
        "job_id",
    ] {
        assert!(first.get(field).is_some(), "{field}: {first}");
    }

    let out = smile_recon(&["export", "--db", db, "--run", &run, "--format", "jsonl"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 80);
    let some = &b.generated.rows[0].id_number;
    assert!(!text.contains(some.as_str()), "an unmasked ID number");
    let out = smile_recon(&[
        "export",
        "--db",
        db,
        "--run",
        &run,
        "--format",
        "jsonl",
        "--show-pii",
    ]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains(some.as_str())
    );

    let out = smile_recon(&["export", "--db", db, "--run", &run, "--state", "invalid"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let invalid = b
        .jobs(finished.run_id)
        .iter()
        .filter(|j| j.state == smile_recon::store::JobState::Invalid)
        .count();
    assert!(invalid > 0);
    assert_eq!(text.lines().count(), invalid + 1, "{text}");
    let bad = smile_recon(&["export", "--db", db, "--run", &run, "--state", "nonsense"]);
    assert_eq!(bad.status.code(), Some(2));
}

fn smile_recon(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .env_remove("SMILE_API_KEY")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_disagreements_are_each_reported_once_with_exit_4() {
    let b = batch::setup(120, 52, Faults::default(), Some(Duration::ZERO)).await;
    // Rewrite the poll manifest with planted disagreements.
    let mut planted: BTreeMap<String, &str> = BTreeMap::new();
    let mut text = String::from("user_id,job_id,expected_result_code,expected_status\n");
    for (i, row) in b.generated.rows.iter().enumerate() {
        let mut code = row.expected_result_code.clone();
        let mut status = row.expected_status().to_owned();
        match i {
            3 | 17 => {
                status = if status == "approved" {
                    "rejected"
                } else {
                    "approved"
                }
                .into();
                planted.insert(
                    row.job_id.clone(),
                    if status == "approved" {
                        "expected_approved_but_rejected"
                    } else {
                        "expected_rejected_but_approved"
                    },
                );
            }
            5 | 40 | 77 if code == "1020" || code == "1021" => {
                code = if code == "1020" { "1021" } else { "1020" }.into();
                planted.insert(row.job_id.clone(), "result_code_differs");
            }
            9 | 60 => {
                status = "pending".into();
                planted.insert(row.job_id.clone(), "expected_pending_but_complete");
            }
            _ => {}
        }
        text.push_str(&format!("{},{},{code},{status}\n", row.user_id, row.job_id));
    }
    text.push_str("ghost-1,never-submitted-1,1020,approved\n");
    planted.insert("never-submitted-1".into(), "job_not_found");
    std::fs::write(&b.manifest, text).unwrap();

    let finished = b.run(b.request(RunMode::Poll, b.flags())).await;
    let out = b.dir.path().join("out");
    let status = smile_recon(&[
        "report",
        "--db",
        b.db.to_str().unwrap(),
        "--run",
        &finished.run_id.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(status.status.code(), Some(4), "{status:?}");

    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(out.join("discrepancies.csv")).unwrap();
    for record in reader.deserialize::<BTreeMap<String, String>>() {
        let record = record.unwrap();
        let previous = found.insert(record["job_id"].clone(), record["kind"].clone());
        assert!(previous.is_none(), "{} reported twice", record["job_id"]);
    }
    let planted: BTreeMap<String, String> = planted
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
    assert_eq!(found, planted);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["reconciliation"]["discrepancies"].as_u64(),
        Some(found.len() as u64)
    );
    assert_valid_against_schema(&summary);
    // The lean pass behind a run's exit code agrees with the reports.
    let store = Store::open_read_only(&b.db).unwrap();
    let lean =
        report::reconciliation(&store, finished.run_id, smile_recon::store::RunMode::Poll).unwrap();
    assert_eq!(lean.discrepancies, found.len() as u64);
    assert_eq!(
        Some(lean.checked),
        summary["reconciliation"]["checked"].as_u64()
    );
    drop(store);
    // And a `poll` run of the same manifest exits 4 by itself, naming the count.
    let again = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["poll", "--manifest", b.manifest.to_str().unwrap()])
        .args(["--db", b.dir.path().join("again.db").to_str().unwrap()])
        .args([
            "--base-url",
            &b.sandbox.base_url(),
            "--rate",
            "0",
            "--quiet",
        ])
        .args(["--poll-interval", "0.2"])
        .env("SMILE_API_KEY", common::KEY)
        .env("SMILE_PARTNER_ID", common::PARTNER)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    assert_eq!(again.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!("reconciliation: {} of", found.len())),
        "{said}"
    );

    let none = smile_recon(&[
        "report",
        "--db",
        b.db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--fail-on",
        "none",
    ]);
    assert_eq!(none.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_between_two_runs_whose_answers_differ() {
    let b = batch::setup(80, 53, Faults::default(), Some(Duration::ZERO)).await;
    let first = b.run(b.request(RunMode::Poll, b.flags())).await;

    // The same jobs on a second server, where five exact matches now have another name
    // on file at the authority's side of the request: they come back as no match.
    let mut preload = b.generated.preloaded_jobs(Duration::ZERO);
    let mut changed = Vec::new();
    for job in preload.iter_mut() {
        let exact = b
            .generated
            .rows
            .iter()
            .any(|r| r.job_id == job.job_id && r.expected_result_code == "1020");
        if exact && changed.len() < 5 {
            job.id_info.first_name = Some("Zzzzzzzz".into());
            job.id_info.last_name = Some("Qqqqqqqq".into());
            job.id_info.dob = Some("1900-01-01".into());
            changed.push(job.job_id.clone());
        }
    }
    let second_server = batch::start_sandbox(&b.generated, Faults::default(), 53, preload).await;
    let flags = Layer {
        base_url: Some(second_server.base_url()),
        ..b.flags()
    };
    // The same manifest again is a deliberate new run of its identity.
    let mut request = b.request(RunMode::Poll, flags);
    request.again = true;
    let second = b.run(request).await;
    assert_ne!(first.run_id, second.run_id);

    let out = b.dir.path().join("drift");
    let summary = write_reports(&b, second.run_id, &out, false);
    assert_valid_against_schema(&summary);
    assert_eq!(
        summary["drift"]["compared_with_run"].as_i64(),
        Some(first.run_id)
    );
    assert_eq!(summary["drift"]["matched"], 80);
    assert_eq!(summary["drift"]["changed"], 5);
    let drift = std::fs::read_to_string(out.join("drift.csv")).unwrap();
    assert_eq!(drift.lines().count(), 6, "{drift}");
    for job_id in &changed {
        assert!(
            drift.contains(job_id.as_str()),
            "{job_id} missing from drift.csv"
        );
    }
    // The first run's reports written into the same folder leave no drift.csv of the
    // second run's beside them (the first run has nothing to compare with).
    let first_summary = write_reports(&b, first.run_id, &out, false);
    assert!(first_summary["drift"].is_null(), "{first_summary}");
    assert!(
        !out.join("drift.csv").exists(),
        "a stale drift.csv was left"
    );
    assert!(out.join("results.csv").exists());
}

/// A submit manifest's `expected_result_code` is reconciled like a poll manifest's: rows
/// whose result differs from it are discrepancies, and the run exits 4 naming the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_run_reconciles_the_expected_result_codes_with_exit_4() {
    let b = batch::setup(60, 59, Faults::default(), None).await;
    let mut reader = csv::Reader::from_path(&b.manifest).unwrap();
    let headers = reader.headers().unwrap().clone();
    let at = headers
        .iter()
        .position(|h| h == "expected_result_code")
        .unwrap();
    let mut writer = csv::Writer::from_path(b.dir.path().join("planted.csv")).unwrap();
    writer.write_record(&headers).unwrap();
    let mut planted = 0;
    for (i, record) in reader.records().enumerate() {
        let mut cells: Vec<String> = record.unwrap().iter().map(str::to_owned).collect();
        if i % 7 == 3 && (cells[at] == "1020" || cells[at] == "1021") {
            cells[at] = if cells[at] == "1020" { "1021" } else { "1020" }.into();
            planted += 1;
        }
        writer.write_record(&cells).unwrap();
    }
    writer.flush().unwrap();
    assert!(planted > 0, "the seed plants at least one disagreement");
    let run = |manifest: &Path, db: &str| {
        Command::new(env!("CARGO_BIN_EXE_smile-recon"))
            .args(["submit", "--manifest", manifest.to_str().unwrap()])
            .args(["--endpoint", "verify", "--rate", "0", "--quiet"])
            .args(["--db", b.dir.path().join(db).to_str().unwrap()])
            .args(["--base-url", &b.sandbox.base_url()])
            .env("SMILE_API_KEY", common::KEY)
            .env("SMILE_PARTNER_ID", common::PARTNER)
            .output()
            .unwrap()
    };
    // The manifest as generated agrees with every answer: only the invalid rows count.
    let clean = run(&b.manifest, "clean.db");
    let said = String::from_utf8_lossy(&clean.stdout).into_owned();
    assert_eq!(clean.status.code(), Some(3), "{said}");
    assert!(
        said.contains("reconciliation: 0 of") || !said.contains("reconciliation"),
        "{said}"
    );
    let planted_run = run(&b.dir.path().join("planted.csv"), "planted.db");
    let said = String::from_utf8_lossy(&planted_run.stdout).into_owned();
    assert_eq!(planted_run.status.code(), Some(4), "{said}");
    assert!(
        said.contains(&format!("reconciliation: {planted} of")),
        "{said}"
    );
}

/// A poll run's rows name no country or id_type: its table places each job by what its
/// job_status answer says (Enhanced KYC answers carry `Country` and `IDType`, and keep them
/// through personal-data minimisation), and only the rest as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_runs_table_places_jobs_by_their_answers() {
    let mut b = batch::setup(80, 58, Faults::default(), Some(Duration::ZERO)).await;
    let enhanced: Vec<_> = b
        .generated
        .preloaded_jobs(Duration::ZERO)
        .into_iter()
        .map(|mut job| {
            job.enhanced = true;
            job
        })
        .collect();
    b.sandbox = batch::start_sandbox(&b.generated, Faults::default(), 58, enhanced).await;
    let finished = b.run(b.request(RunMode::Poll, b.flags())).await;
    let jobs = b.jobs(finished.run_id);
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for job in &jobs {
        let row = b
            .generated
            .rows
            .iter()
            .find(|r| r.job_id == job.job_id)
            .unwrap();
        let place = if job.result_code.as_deref() == Some("1012") {
            (row.country.clone(), row.id_type.clone())
        } else {
            ("unknown".to_owned(), "unknown".to_owned())
        };
        *expected.entry(place).or_default() += 1;
    }
    assert!(
        expected.keys().filter(|(c, _)| c != "unknown").count() > 1,
        "{expected:?}"
    );
    let out = b.dir.path().join("reports");
    let summary = write_reports(&b, finished.run_id, &out, false);
    assert_valid_against_schema(&summary);
    let table: BTreeMap<(String, String), u64> = summary["by_country_id_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let text = |k: &str| p[k].as_str().unwrap().to_owned();
            (
                (text("country"), text("id_type")),
                p["jobs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(table, expected);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let (country, id_type) = expected.keys().find(|(c, _)| c != "unknown").unwrap();
    assert!(
        html.contains(&format!("<td>{country}</td><td>{id_type}</td>")),
        "{html}"
    );
}
