//! Secrets and bounds (issue 14, finding 6), on the real binary: numeric flags and spec
//! values out of range exit 2 before a run exists (no panic, no huge allocation); a URL
//! with user info is refused and never echoed or stored; a key file open to others gets a
//! warning and a malformed one says what was found; core dumps are off.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "bounds-test-key-4f9a";
const MANIFEST: &str = "country,id_type,id_number,first_name,last_name,user_id\n\
                        KE,NATIONAL_ID,12345678,Amina,Otieno,u-1\n";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_smile-recon"));
    c.env("SMILE_API_KEY", KEY)
        .env("SMILE_PARTNER_ID", "002")
        .env_remove("SMILE_RECON_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs to its end, or kills it after `limit` (a command that should have been refused at
/// once but runs on fails its test instead of hanging it).
fn run_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.spawn().expect("spawn smile-recon");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn submit(dir: &Path, extra: &[&str]) -> Output {
    let manifest = dir.join("m.csv");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let mut cmd = bin();
    cmd.current_dir(dir)
        .args(["submit", "--manifest", "m.csv", "--db", "runs.db"])
        .args([
            "--callback-listen",
            "127.0.0.1:0",
            "--endpoint",
            "verify-async",
        ]);
    if !extra.iter().any(|a| a.starts_with("--base-url")) {
        cmd.args(["--base-url", "http://127.0.0.1:9"]);
    }
    cmd.args(extra);
    run_within(cmd, Duration::from_secs(60))
}

#[test]
fn numeric_flags_out_of_range_exit_2_naming_the_range_before_a_database_exists() {
    let cases: &[&[&str]] = &[
        &["--rate", "1e-30"],
        &["--rate", "NaN"],
        &["--rate", "inf"],
        &["--rate", "-1"],
        &["--rate", "1e9"],
        &["--concurrency", "50000000"],
        &["--concurrency", "0"],
        &["--burst", "0"],
        &["--burst", "4000000000"],
        &["--max-attempts", "0"],
        &["--max-attempts", "1000000"],
        &["--timeout", "1e300"],
        &["--timeout", "-5"],
        &["--timeout", "nan"],
        &["--connect-timeout", "0"],
        &["--result-timeout", "inf"],
        &["--callback-grace", "1e30"],
        &["--callback-max-age", "0"],
        &["--callback-max-age", "86401"],
        &["--callback-max-age", "1e309"],
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        // (`--flag=value`: clap takes "-1" after a space for a flag.)
        let out = submit(dir.path(), &[&format!("{}={}", case[0], case[1])]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{case:?}: {shown}");
        assert!(
            shown.contains(case[0]) && shown.contains("between"),
            "{case:?}: the message names the flag and its range: {shown}"
        );
        assert!(!shown.contains("panicked"), "{case:?}: {shown}");
        assert!(
            !dir.path().join("runs.db").exists(),
            "{case:?}: refused before the database was created"
        );
    }
    // poll's own durations.
    for case in [["--deadline", "inf"], ["--poll-interval", "0"]] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.csv"), "user_id,job_id\nu-1,j-1\n").unwrap();
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(["poll", "--manifest", "p.csv", "--db", "runs.db"])
            .args(["--base-url", "http://127.0.0.1:9"])
            .args(case);
        let out = run_within(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{case:?}: {}", text(&out));
        assert!(text(&out).contains("between"), "{}", text(&out));
    }
}

#[test]
fn spec_values_out_of_range_exit_2_and_no_run_is_created() {
    for (section, line) in [
        ("limits", "concurrency = 50000000"),
        ("limits", "rate = 1e-30"),
        ("limits", "burst = 0"),
        ("limits", "max_attempts = 0"),
        ("api", "timeout = 1e300"),
        ("poll", "deadline = -1.0"),
        ("limits", "result_timeout = 1e300"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.csv"), MANIFEST).unwrap();
        std::fs::write(
            dir.path().join("job.toml"),
            format!(
                "mode = \"submit\"\n[manifest]\npath = \"m.csv\"\n\
                 [submit]\ncallback_listen = \"127.0.0.1:0\"\n\
                 [{section}]\n{line}\n{}",
                if section == "api" {
                    ""
                } else {
                    "[api]\nbase_url = \"http://127.0.0.1:9\"\n"
                }
            ),
        )
        .unwrap();
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(["run", "job.toml", "--db", "runs.db"]);
        let out = run_within(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(2), "{line}: {}", text(&out));
        assert!(text(&out).contains("between"), "{line}: {}", text(&out));
        let mut runs = bin();
        runs.current_dir(dir.path())
            .args(["runs", "--db", "runs.db"]);
        let listed = run_within(runs, Duration::from_secs(30));
        assert!(
            text(&listed).contains("no runs"),
            "{line}: a run was created: {}",
            text(&listed)
        );
    }
}

#[test]
fn sandbox_and_demo_flags_out_of_range_exit_2() {
    let cases: &[&[&str]] = &[
        &["sandbox", "--latency-ms", "18446744073709551615"],
        &["sandbox", "--latency-jitter-ms", "99999999999"],
        &["sandbox", "--callback-delay-ms", "18446744073709551615"],
        &["sandbox", "--callback-attempts", "0"],
        &["sandbox", "--id-limit-window", "1e300"],
        &["sandbox", "--outage", "1e300:5"],
        &["sandbox", "--people", "0"],
        &["demo", "--rate", "1e-30"],
        &["demo", "--rows", "0"],
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = bin();
        cmd.current_dir(dir.path())
            .args(*case)
            .args(if case[0] == "sandbox" {
                &["--listen", "127.0.0.1:0"][..]
            } else {
                &["--dir", "demo"][..]
            });
        let out = run_within(cmd, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{case:?}: {}", text(&out));
        assert!(text(&out).contains("between"), "{case:?}: {}", text(&out));
    }
}

#[test]
fn a_url_with_user_info_is_refused_and_its_password_never_shown_or_stored() {
    let dir = tempfile::tempdir().unwrap();
    let out = submit(
        dir.path(),
        &["--base-url", "http://admin:hunter2pw@127.0.0.1:9/"],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(
        !shown.contains("hunter2pw"),
        "the password was echoed: {shown}"
    );
    assert!(shown.contains("http://127.0.0.1:9/"), "{shown}");
    assert!(!dir.path().join("runs.db").exists());

    let out = submit(
        dir.path(),
        &[
            "--callback-url",
            "https://hook:hunter2pw@hooks.example.com/smile",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("hunter2pw"), "{}", text(&out));

    // In a job spec: refused before a run is created; nothing in the database holds it.
    std::fs::write(
        dir.path().join("job.toml"),
        "mode = \"submit\"\n[manifest]\npath = \"m.csv\"\n\
         [api]\nbase_url = \"http://admin:hunter2pw@127.0.0.1:9\"\n\
         [submit]\ncallback_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args(["run", "job.toml", "--db", "spec.db"]);
    let out = run_within(cmd, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!text(&out).contains("hunter2pw"), "{}", text(&out));
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv" || e == "toml") {
            continue;
        }
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(9).any(|w| w == b"hunter2pw"),
                "{} holds the password",
                path.display()
            );
        }
    }
}

fn sign_with(file: &Path) -> Output {
    let mut cmd = bin();
    cmd.env_remove("SMILE_API_KEY").args([
        "sign",
        "--partner-id",
        "002",
        "--timestamp",
        "2026-01-01T00:00:00Z",
        "--api-key-file",
    ]);
    cmd.arg(file);
    run_within(cmd, Duration::from_secs(20))
}

#[cfg(unix)]
#[test]
fn a_key_file_open_to_others_gets_a_warning_and_a_private_one_none() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let open = sign_with(&file);
    assert_eq!(open.status.code(), Some(0), "{}", text(&open));
    let stderr = String::from_utf8_lossy(&open.stderr);
    assert!(
        stderr.contains("warning") && stderr.contains("0644") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!text(&open).contains(KEY));

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let private = sign_with(&file);
    assert_eq!(private.status.code(), Some(0), "{}", text(&private));
    assert!(
        !String::from_utf8_lossy(&private.stderr).contains("warning"),
        "{}",
        text(&private)
    );
    // The same signature as the key from the environment.
    let mut env = bin();
    env.args([
        "sign",
        "--partner-id",
        "002",
        "--timestamp",
        "2026-01-01T00:00:00Z",
    ]);
    assert_eq!(
        run_within(env, Duration::from_secs(20)).stdout,
        private.stdout
    );
}

#[test]
fn a_malformed_key_file_says_what_was_found_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty"),
        (b" \n\t\n", "only white space"),
        (
            b"bounds-test-key-4f9a\nsecond-line-xyz\n",
            "2 non-empty lines",
        ),
        (b"bounds-test-key\x004f9a\n", "NUL"),
        (b"bounds-test-key-\xff\xfe\n", "not UTF-8"),
        (b"SMILE_API_KEY = bounds-test-key-4f9a\n", "3 words"),
    ];
    for (bytes, found) in cases {
        let file = dir.path().join("key");
        std::fs::write(&file, bytes).unwrap();
        let out = sign_with(&file);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{found}: {shown}");
        assert!(shown.contains(found), "expected {found:?} in: {shown}");
        assert!(
            !shown.contains("4f9a") && !shown.contains("second-line"),
            "the file's content was shown: {shown}"
        );
    }
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; 100_000]).unwrap();
    let out = sign_with(&big);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("larger than"), "{}", text(&out));
    // CRLF and a final newline are fine.
    let crlf = dir.path().join("crlf");
    std::fs::write(&crlf, format!("{KEY}\r\n")).unwrap();
    assert_eq!(sign_with(&crlf).status.code(), Some(0));
}

/// The real binary, started with a non-zero soft core limit, runs with core dumps off
/// (`Max core file size` 0, soft and hard) while it holds the key.
#[cfg(target_os = "linux")]
#[test]
fn core_dumps_are_off_while_the_key_is_held() {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = bin();
    cmd.args(["sandbox", "--listen", "127.0.0.1:0", "--people", "10"]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
            lim.rlim_cur = lim.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_CORE, &lim);
            Ok(())
        });
    }
    let mut child: Child = cmd.spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("listening on"), "{first}");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.get(4..6), Some(&["0", "0"][..]), "{line}");
}

mod manifests {
    use std::path::Path;

    use smile_recon::manifest::{
        self, ManifestError, ManifestSource, ReadError, Row, RowBody, RowKind,
    };

    const HEAD: &str = "country,id_type,id_number,first_name,last_name,user_id";
    const ROW: &str = "KE,NATIONAL_ID,12345678,Amina,Otieno,u-1";

    fn read(path: &Path, kind: RowKind) -> Result<Vec<Row>, ManifestError> {
        let mut rows = Vec::new();
        match manifest::read(
            &ManifestSource::Csv(path.to_owned()),
            kind,
            "salt",
            0,
            |row| {
                rows.push(row);
                Ok::<(), std::convert::Infallible>(())
            },
        ) {
            Ok(_) => Ok(rows),
            Err(ReadError::Manifest(e)) => Err(e),
            Err(ReadError::Sink(never)) => match never {},
        }
    }

    fn csv(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn reserved_names_are_refused_as_extra_columns_with_the_line_and_field() {
        for name in [
            "job_type",
            "Job_Type",
            "partner_id",
            "signature",
            "partner_params",
        ] {
            let (_dir, path) = csv(&format!("{HEAD},{name}\n{ROW},5\n"));
            let e = read(&path, RowKind::Verify).expect_err(name).to_string();
            assert!(
                e.contains("line 1") && e.contains(name) && e.contains("reserved"),
                "{e}"
            );
            // Poll manifests too: their extras are partner_params as well.
            let (_dir, path) = csv(&format!("user_id,job_id,{name}\nu-1,j-1,5\n"));
            let e = read(&path, RowKind::Poll).expect_err(name).to_string();
            assert!(e.contains("reserved"), "{e}");
        }
    }

    #[test]
    fn extra_columns_are_capped_in_number_and_size() {
        let extras = |n: usize| {
            (0..n)
                .map(|i| format!("x{i}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let cells = |n: usize| vec!["v"; n].join(",");
        let max = 32; // manifest::MAX_EXTRA_COLUMNS
        let (_dir, path) = csv(&format!("{HEAD},{}\n{ROW},{}\n", extras(max), cells(max)));
        let rows = read(&path, RowKind::Verify).unwrap();
        match &rows[0].body {
            RowBody::Verify(v) => assert_eq!(v.extra.len(), max),
            other => panic!("{other:?}"),
        }
        let (_dir, path) = csv(&format!(
            "{HEAD},{}\n{ROW},{}\n",
            extras(max + 1),
            cells(max + 1)
        ));
        let e = read(&path, RowKind::Verify)
            .expect_err("33 extras")
            .to_string();
        assert!(e.contains("33 extra columns") && e.contains("32"), "{e}");
        // 100,000 columns: refused at the header, whatever their names.
        let (_dir, path) = csv(&format!("{HEAD},{}\n", extras(100_000)));
        let e = read(&path, RowKind::Verify)
            .expect_err("100,000")
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        // An extra cell longer than 1 KiB makes its row invalid, naming line and field.
        let big = "a".repeat(1024 + 1);
        let ok = "a".repeat(1024);
        let (_dir, path) = csv(&format!("{HEAD},note\n{ROW},{big}\n{ROW},{ok}\n"));
        let rows = read(&path, RowKind::Verify).unwrap();
        match &rows[0].body {
            RowBody::Invalid(e) => {
                assert_eq!((e.line, e.field.as_str()), (2, "note"));
                assert!(e.reason.contains("1024"), "{}", e.reason);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(rows[1].body, RowBody::Verify(_)));
        // A long extra column name.
        let long = "n".repeat(64 + 1);
        let (_dir, path) = csv(&format!("{HEAD},{long}\n{ROW},v\n"));
        let e = read(&path, RowKind::Verify)
            .expect_err("long name")
            .to_string();
        assert!(e.contains("at most 64 bytes"), "{e}");
    }

    #[test]
    fn a_record_without_an_end_is_refused_without_buffering_the_file() {
        // A 20 MB "row": more than any row can hold (64 fields of 64 KiB).
        let (_dir, path) = csv(&format!("{HEAD}\n{}\n", "a".repeat(20 << 20)));
        let e = read(&path, RowKind::Verify)
            .expect_err("huge record")
            .to_string();
        assert!(e.contains("line 2") && e.contains("longer than"), "{e}");
    }

    #[test]
    fn a_sqlite_query_with_too_many_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t(user_id, job_id); INSERT INTO t VALUES ('u', 'j');")
            .unwrap();
        drop(conn);
        let cols = (0..70)
            .map(|i| format!("1 AS c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let source = ManifestSource::Sqlite {
            path: db.clone(),
            query: format!("SELECT user_id, job_id, {cols} FROM t"),
        };
        let result = manifest::read(&source, RowKind::Poll, "salt", 0, |_| {
            Ok::<(), std::convert::Infallible>(())
        });
        let e = match result {
            Err(ReadError::Manifest(e)) => e.to_string(),
            other => panic!("{:?}", other.map(|_| ())),
        };
        assert!(e.contains("72 columns") && e.contains("64"), "{e}");
        let source = ManifestSource::Sqlite {
            path: db,
            query: "SELECT user_id, job_id, 5 AS job_type FROM t".into(),
        };
        let result = manifest::read(&source, RowKind::Poll, "salt", 0, |_| {
            Ok::<(), std::convert::Infallible>(())
        });
        match result {
            Err(ReadError::Manifest(e)) => assert!(e.to_string().contains("reserved"), "{e}"),
            other => panic!("job_type from SQLite: {:?}", other.map(|_| ())),
        }
    }
}

/// A manifest whose header has 1,000,000 columns (and one row of as many cells) is
/// refused at its header by the real binary, with a bounded peak RSS (5.75 GB before).
#[cfg(target_os = "linux")]
#[test]
fn a_million_column_manifest_is_refused_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("user_id,job_id");
    for i in 0..1_000_000 {
        text.push_str(&format!(",c{i}"));
    }
    text.push('\n');
    text.push_str("u-1,j-1");
    text.push_str(&",v".repeat(1_000_000));
    text.push('\n');
    std::fs::write(dir.path().join("wide.csv"), text).unwrap();
    let mut cmd = bin();
    cmd.current_dir(dir.path())
        .args(["poll", "--manifest", "wide.csv", "--db", "runs.db"])
        .args(["--base-url", "http://127.0.0.1:9", "--quiet"]);
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    let peak_mb = usage.ru_maxrss / 1024;
    let mut rest = child
        .wait_with_output()
        .map(|o| o.stderr)
        .unwrap_or_default();
    rest.truncate(2000);
    println!("peak RSS with a 1,000,000-column manifest: {peak_mb} MB");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 1,
        "status {status}"
    );
    assert!(peak_mb < 64, "peak RSS {peak_mb} MB");
}

mod stored_answers {
    use serde_json::{Value, json};
    use smile_recon::api::models::{JobStatusResponse, SignedResult};
    use smile_recon::engine::outcome::{self, Next};
    use smile_recon::store::JobState;

    fn stored(next: &Next) -> Value {
        match next {
            Next::Final {
                result: Some(r), ..
            } => serde_json::from_str(&r.json).expect("stored JSON parses"),
            other => panic!("{other:?}"),
        }
    }

    fn result(extra: Value) -> Value {
        let mut r = json!({
            "ResultCode": "1020",
            "ResultText": "Exact Match",
            "SmileJobID": "0000000001",
            "PartnerParams": {"user_id": "u-1", "job_id": "j-1", "job_type": 5},
            "Actions": {"Verify_ID_Number": "Verified", "Names": "Exact Match"},
        });
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        r
    }

    fn status(body: Value) -> JobStatusResponse {
        let raw = body.to_string();
        let mut answer: JobStatusResponse = serde_json::from_value(body).unwrap();
        answer.raw = Some(raw);
        answer
    }

    /// A job_status answer carrying a history we never asked for (8 MiB of it, as a
    /// server may send) keeps its result and drops the history; the stored JSON is capped.
    #[test]
    fn a_job_status_answer_keeps_what_we_asked_for_within_the_cap() {
        let entry = result(json!({"ResultText": "x".repeat(1000)}));
        let history: Vec<Value> = (0..8_000).map(|_| entry.clone()).collect();
        let body = json!({
            "timestamp": "2026-01-01T00:00:00Z", "signature": "sig",
            "job_complete": true, "job_success": true, "code": "2302",
            "result": result(json!({})),
            "history": history,
            "image_links": {"selfie_image": "https://example.com/".to_owned() + &"i".repeat(5000)},
        });
        assert!(body.to_string().len() > 8 << 20);
        let kept = stored(&outcome::after_status(&status(body), JobState::Awaiting));
        let text = kept.to_string();
        assert!(text.len() <= 64 * 1024, "{} bytes stored", text.len());
        assert!(kept.get("history").is_none() && kept.get("image_links").is_none());
        assert_eq!(kept["result"]["ResultCode"], "1020");
        assert_eq!(kept["result"]["Actions"]["Names"], "Exact Match");
        assert_eq!(kept["code"], "2302");

        // A result too large by itself: the call's fields and the result's codes and
        // Actions, marked truncated.
        let body = json!({
            "timestamp": "t", "signature": "s", "job_complete": true, "job_success": true,
            "code": "2302", "result": result(json!({"FullData": "d".repeat(200_000)})),
        });
        let kept = stored(&outcome::after_status(&status(body), JobState::Awaiting));
        assert!(kept.to_string().len() <= 64 * 1024);
        assert_eq!(kept["truncated"], true);
        assert_eq!(kept["result"]["Actions"]["Verify_ID_Number"], "Verified");
        assert!(kept["result"].get("FullData").is_none());

        // A small answer is kept byte for byte.
        let body = json!({
            "timestamp": "t", "signature": "s", "job_complete": true, "job_success": true,
            "code": "2302", "result": result(json!({})),
        });
        let raw = body.to_string();
        match outcome::after_status(&status(body), JobState::Awaiting) {
            Next::Final {
                result: Some(r), ..
            } => assert_eq!(r.json, raw),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_callback_or_sync_result_is_capped_too() {
        let mut body = result(json!({"FullData": "d".repeat(300_000)}));
        body["timestamp"] = json!("t");
        body["signature"] = json!("s");
        let signed: SignedResult = serde_json::from_value(body).unwrap();
        let kept = stored(&outcome::after_result(
            &signed,
            smile_recon::store::ResultSource::Callback,
            JobState::Queued,
        ));
        assert!(kept.to_string().len() <= 64 * 1024);
        assert_eq!(kept["ResultCode"], "1020");
        assert_eq!(kept["Actions"]["Names"], "Exact Match");
        assert_eq!(kept["truncated"], true);
    }
}
