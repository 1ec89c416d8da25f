//! The operator's view (issue 17): JSON logs that `jq` can read, a Prometheus metrics file,
//! counters that agree with what the sandbox saw, completions and the man page, `runs`.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::batch::{self, Batch};
use serde_json::Value;
use smile_recon::sandbox::Faults;
use smile_recon::store::Store;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
}

fn command(b: &Batch, sub: &str, metrics: &std::path::Path, rate: &str) -> Command {
    let mut cmd = bin();
    cmd.arg(sub);
    if sub == "submit" {
        cmd.args(["--manifest", b.manifest.to_str().unwrap()])
            .args(["--endpoint", "verify-async"])
            .args(["--callback-listen", "127.0.0.1:0", "--callback-grace", "1"]);
    }
    cmd.args(["--db", b.db.to_str().unwrap()])
        .args(["--base-url", &b.sandbox.base_url()])
        .args(["--partner-id", common::PARTNER])
        .args(["--rate", rate, "--concurrency", "8", "--max-attempts", "20"])
        .args(["--log-format", "json"])
        .args(["--metrics-file", metrics.to_str().unwrap()])
        .env("SMILE_API_KEY", common::KEY)
        .env_remove("SMILE_RECON_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Every stderr line as a JSON object; fails on any line that is not one.
fn json_lines(stderr: &[u8]) -> Vec<Value> {
    let text = String::from_utf8(stderr.to_vec()).unwrap();
    text.lines()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(v) if v.is_object() => v,
            _ => panic!("a stderr line that is not a JSON object: {l:?}"),
        })
        .collect()
}

/// The metrics file parsed with a Prometheus text-format parser; every sample line must
/// parse, every family has HELP and TYPE, counters end in `_total`.
fn scrape(path: &std::path::Path) -> prometheus_parse::Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    let sample_lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    assert_eq!(
        scrape.samples.len(),
        sample_lines,
        "every sample parses:\n{text}"
    );
    for sample in &scrape.samples {
        let name = &sample.metric;
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && name.starts_with("smile_recon_"),
            "{name}"
        );
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has HELP");
        match sample.value {
            prometheus_parse::Value::Counter(v) => {
                assert!(name.ends_with("_total"), "{name}");
                assert!(v >= 0.0);
            }
            prometheus_parse::Value::Gauge(_) => {
                assert!(!name.ends_with("_total"), "{name}")
            }
            ref other => panic!("{name}: unexpected type {other:?}"),
        }
    }
    scrape
}

fn value(sample: &prometheus_parse::Sample) -> f64 {
    match sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => f64::NAN,
    }
}

/// The samples of `metric` by the value of `label`.
fn by_label(scrape: &prometheus_parse::Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| (s.labels.get(label).unwrap_or("").to_owned(), value(s)))
        .collect()
}

fn one(scrape: &prometheus_parse::Scrape, metric: &str) -> f64 {
    let found: Vec<f64> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(value)
        .collect();
    assert_eq!(found.len(), 1, "{metric}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_through_an_interrupt_and_a_resume_name_the_run_on_every_line() {
    let faults = Faults {
        latency: Duration::from_millis(5),
        ..Faults::default()
    };
    let rows = 400;
    let b = batch::setup(rows, 17, faults, None).await;
    let metrics = b.dir.path().join("smile.prom");

    let child = command(&b, "submit", &metrics, "40").spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // SIGTERM: the run stops dispatching and exits 130, resumable.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let first: Output = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{first:?}");
    // While interrupted, the file says so: not running, exit code 130.
    let interrupted = scrape(&metrics);
    assert_eq!(one(&interrupted, "smile_recon_exit_code"), 130.0);
    assert_eq!(one(&interrupted, "smile_recon_run_running"), 0.0);

    let second = command(&b, "resume", &metrics, "40").output().unwrap();
    let code = second.status.code();
    assert!(matches!(code, Some(0 | 3)), "{second:?}");

    let mut lines = json_lines(&first.stderr);
    let resumed = json_lines(&second.stderr);
    assert!(resumed.len() >= 3, "{resumed:?}");
    lines.extend(resumed);
    for line in &lines {
        assert_eq!(line["run"], 1, "every line names the run: {line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("interrupted:")),
        "{messages:?}"
    );
    assert!(messages.contains(&"resuming run"), "{messages:?}");
    // The summary of each execution, with its counts as numbers.
    let summaries: Vec<&Value> = lines.iter().filter(|l| l["event"] == "summary").collect();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[1]["total"], rows as u64);
    assert_eq!(summaries[1]["status"], "finished");
    // The last word: the exit code the process ended with, as a number.
    let exit = lines.iter().rev().find(|l| l["event"] == "exit").unwrap();
    assert_eq!(exit["exit_code"].as_i64(), code.map(i64::from), "{exit}");
    assert_eq!(exit["run"], 1);
    // Progress lines carry the counts as numbers, and the total is the manifest's rows.
    let progress: Vec<&Value> = lines.iter().filter(|l| l["event"] == "progress").collect();
    assert!(!progress.is_empty(), "a progress line every 5 s");
    for p in &progress {
        assert_eq!(p["total"], rows as u64, "{p}");
        for field in [
            "done",
            "in_flight",
            "waiting",
            "retries",
            "requests",
            "approved",
        ] {
            assert!(p[field].is_u64(), "{field} in {p}");
        }
        assert!(p["rps"].is_number() && p["percent"].is_number(), "{p}");
    }

    // The metrics file: valid exposition whose job counts are the run's.
    let scrape = scrape(&metrics);
    let store = Store::open_read_only(&b.db).unwrap();
    let (states, categories) = store.counts(1).unwrap();
    let jobs = by_label(&scrape, "smile_recon_jobs", "state");
    for (state, n) in &states {
        assert_eq!(jobs.get(state.as_str()), Some(&(*n as f64)), "{state:?}");
    }
    assert_eq!(jobs.values().sum::<f64>(), rows as f64);
    let by_category = by_label(&scrape, "smile_recon_jobs_by_category", "category");
    let approved = categories.get("Approved").copied().unwrap_or(0);
    assert!(approved > 0);
    assert_eq!(by_category.get("approved"), Some(&(approved as f64)));
    assert_eq!(
        one(&scrape, "smile_recon_exit_code"),
        f64::from(code.unwrap_or(-1))
    );
    assert_eq!(one(&scrape, "smile_recon_run_running"), 0.0);
    if code == Some(0) {
        assert!(one(&scrape, "smile_recon_last_success_timestamp_seconds") > 1.7e9);
    }

    // `runs --json`, filtered.
    let runs = bin()
        .args([
            "runs",
            "--db",
            b.db.to_str().unwrap(),
            "--json",
            "--status",
            "finished",
        ])
        .args(["--since", "1d", "--limit", "5"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["jobs"], rows as u64);
    assert!(list[0]["started"].is_string() && list[0]["finished"].is_string());
    let none = bin()
        .args([
            "runs",
            "--db",
            b.db.to_str().unwrap(),
            "--json",
            "--name",
            "nightly",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&none.stdout).trim(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_callback_counters_equal_what_the_sandbox_saw() {
    let faults = Faults {
        fail_rate: 0.05,
        drop_callbacks: 0.2,
        latency: Duration::from_millis(2),
        ..Faults::default()
    };
    let rows = 400;
    let b = batch::setup(rows, 23, faults, None).await;
    let metrics = b.dir.path().join("smile.prom");
    let out = command(&b, "submit", &metrics, "0").output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
    let scrape = scrape(&metrics);
    let stats = b.sandbox.stats();

    // Outgoing requests, by endpoint and status, are exactly what the sandbox received
    // (the /v1/services look-up before the run is the only other request).
    let mut sent: BTreeMap<(String, String), f64> = BTreeMap::new();
    for s in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "smile_recon_requests_total")
    {
        let key = (
            s.labels.get("endpoint").unwrap_or("").to_owned(),
            s.labels.get("status").unwrap_or("").to_owned(),
        );
        sent.insert(key, value(s));
    }
    let mut seen: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (path, statuses) in &stats.requests_by_endpoint {
        if path == "/v1/services" {
            continue;
        }
        for (status, n) in statuses {
            seen.insert((path.clone(), status.to_string()), *n as f64);
        }
    }
    assert_eq!(sent, seen);
    assert!(
        stats.requests("/v2/verify_async", 500) > 0,
        "failures were injected"
    );
    assert!(
        stats.requests_to("/v1/job_status") > 0,
        "dropped callbacks were polled"
    );
    assert_eq!(
        stats.total_requests - stats.requests_to("/v1/services"),
        sent.values().sum::<f64>() as u64
    );
    // Incoming callbacks apart: every callback POST the sandbox made reached the receiver.
    let callbacks = by_label(&scrape, "smile_recon_callbacks_total", "outcome");
    assert_eq!(
        callbacks.get("received"),
        Some(&(stats.callback_attempts as f64))
    );
    assert_eq!(
        callbacks.get("accepted").copied().unwrap_or(0.0)
            + callbacks.get("refused").copied().unwrap_or(0.0),
        stats.callback_attempts as f64
    );
    // Every job sent is accounted for; the JSON summary's total is the manifest's rows.
    let jobs = by_label(&scrape, "smile_recon_jobs", "state");
    assert_eq!(jobs.values().sum::<f64>(), rows as f64);
    let lines = json_lines(&out.stderr);
    let summary = lines.iter().find(|l| l["event"] == "summary").unwrap();
    assert_eq!(summary["total"], rows as u64);
}

#[test]
fn completions_and_the_man_page() {
    for (shell, marker) in [
        ("bash", "complete -F _smile__recon"),
        ("zsh", "#compdef smile-recon"),
        ("fish", "complete -c smile-recon"),
    ] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(200)]
        );
        assert!(
            text.contains("metrics-file"),
            "{shell} completes subcommand flags"
        );
    }
    // bash: every state the script moves to has a branch (a hyphenated name was spelled
    // two ways, so nothing after the subcommand completed).
    let bash =
        String::from_utf8(bin().args(["completions", "bash"]).output().unwrap().stdout).unwrap();
    let branches: std::collections::BTreeSet<&str> = bash
        .lines()
        .filter_map(|l| l.trim().strip_suffix(')'))
        .filter(|l| l.starts_with("smile__"))
        .collect();
    for state in bash
        .lines()
        .filter_map(|l| l.trim().strip_prefix("cmd=\""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|s| !s.is_empty())
    {
        assert!(branches.contains(state), "bash: no branch for {state}");
    }
    let bad = bin().args(["completions", "cmd.exe"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let man = bin().arg("man").output().unwrap();
    assert!(man.status.success());
    let text = String::from_utf8(man.stdout).unwrap();
    assert!(text.starts_with(".ie") || text.starts_with(".TH"), "roff");
    assert!(text.contains(".TH smile-recon 1"));
    assert!(text.contains("SMILE-RECON SUBMIT"));
    assert!(text.contains("\\-\\-metrics\\-file"));
}

/// `export ... | head -1`: a reader that has gone ends the export quietly with exit 0
/// (it printed "stdout: Broken pipe" and exited 1). The pipe's read end is closed before
/// the export starts, so every write meets EPIPE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_into_a_closed_pipe_ends_quietly() {
    let b = batch::setup(20, 61, Faults::default(), None).await;
    let flags = b.submit_flags(smile_recon::api::SubmitEndpoint::Verify);
    let finished = b
        .run(b.request(smile_recon::job_spec::RunMode::Submit, flags))
        .await;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = bin()
        .args(["export", "--db", b.db.to_str().unwrap()])
        .args(["--run", &finished.run_id.to_string(), "--events"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
