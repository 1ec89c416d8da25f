//! `runs prune --older-than D` on the real binary: old finished runs go with every row
//! that referred to them, an old unfinished run stays, `--dry-run` deletes nothing, the
//! file shrinks, and a database held by another process is refused.

mod common;

use common::cli::{smile_recon, text};

use std::collections::BTreeMap;
use std::path::Path;

use common::batch;
use smile_recon::sandbox::Faults;
use smile_recon::store::DbLock;

/// Every table that holds a run's rows, with the column naming the run.
const TABLES: [(&str, &str); 5] = [
    ("runs", "id"),
    ("jobs", "run_id"),
    ("events", "run_id"),
    ("executions", "run_id"),
    ("callback_replays", "run_id"),
];

/// Rows per (table, run).
fn rows_per_run(db: &Path) -> BTreeMap<(String, i64), i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut all = BTreeMap::new();
    for (table, column) in TABLES {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {column}, COUNT(*) FROM {table} GROUP BY {column}"
            ))
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .unwrap();
        for row in rows {
            let (run, n) = row.unwrap();
            all.insert((table.to_owned(), run), n);
        }
    }
    all
}

/// `submit --endpoint verify` of `manifest` into `runs.db` against `url`, no rate limit,
/// quiet, with `extra` flags.
fn submit_verify(
    dir: &Path,
    url: &str,
    manifest: &str,
    key: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut args = vec![
        "submit",
        "--manifest",
        manifest,
        "--endpoint",
        "verify",
        "--base-url",
        url,
        "--rate",
        "0",
        "--db",
        "runs.db",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    smile_recon(&args, key, dir)
}

fn of_run(rows: &BTreeMap<(String, i64), i64>, run: i64) -> BTreeMap<String, i64> {
    rows.iter()
        .filter(|((_, r), _)| *r == run)
        .map(|((t, _), n)| (t.clone(), *n))
        .collect()
}

fn size(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(db).unwrap().len() + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_finished_runs_go_with_every_row_and_unfinished_ones_stay() {
    let b = batch::setup(400, 83, Faults::default(), None).await;
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let submit = |key: &str, again: bool| {
        let mut extra = vec!["--keep-pii"];
        if again {
            extra.push("--again");
        }
        submit_verify(dir, &url, "manifest.csv", key, &extra)
    };
    // run 1 (old, finished), run 2 (recent, finished), run 3 (old, stopped by the breaker)
    for (key, again) in [(common::KEY, false), (common::KEY, true)] {
        let out = submit(key, again);
        assert!(matches!(out.status.code(), Some(0 | 3)), "{}", text(&out));
    }
    let stopped = submit("wrong-key-5678", true);
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    let old = smile_recon::store::now_ms() - 100 * 86_400_000;
    {
        let conn = rusqlite::Connection::open(&b.db).unwrap();
        conn.execute("UPDATE runs SET created_at = ?1 WHERE id IN (1, 3)", [old])
            .unwrap();
        // a callback replay of each run (this batch has no callbacks)
        conn.execute_batch(
            "INSERT INTO callback_replays (timestamp, signature, run_id, job_row, at) VALUES \
             ('t1', 's', 1, 1, 0), ('t2', 's', 2, 1, 0), ('t3', 's', 3, 1, 0);",
        )
        .unwrap();
    }
    let before = rows_per_run(&b.db);
    for table in ["runs", "jobs", "events", "executions", "callback_replays"] {
        assert!(
            before.contains_key(&(table.into(), 1)),
            "{table} {before:?}"
        );
    }
    assert_eq!(of_run(&before, 3)["runs"], 1);
    let prune = |extra: &[&str]| {
        let mut args = vec!["runs", "prune", "--older-than", "90d", "--db", "runs.db"];
        args.extend_from_slice(extra);
        smile_recon(&args, common::KEY, dir)
    };

    // refused while another process holds the database
    {
        let _lock = DbLock::acquire(&b.db).unwrap();
        let refused = prune(&[]);
        assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
        assert!(text(&refused).contains("in use"), "{}", text(&refused));
    }
    assert_eq!(rows_per_run(&b.db), before);

    let bytes_before = size(&b.db);
    let dry = prune(&["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(text(&dry).contains("run 1 ("), "{}", text(&dry));
    assert!(
        text(&dry).contains("400 jobs would be deleted"),
        "{}",
        text(&dry)
    );
    assert!(
        text(&dry).contains("kept 1 unfinished runs"),
        "{}",
        text(&dry)
    );
    assert!(!text(&dry).contains("run 2 ("), "{}", text(&dry));
    assert_eq!(rows_per_run(&b.db), before, "a dry run deletes nothing");

    let done = prune(&[]);
    assert_eq!(done.status.code(), Some(0), "{}", text(&done));
    let out = text(&done);
    assert!(out.contains("deleted 1 runs, 400 jobs"), "{out}");
    assert!(out.contains("run 3 (interrupted)"), "{out}");
    let after = rows_per_run(&b.db);
    assert!(of_run(&after, 1).is_empty(), "{after:?}");
    assert_eq!(of_run(&after, 2), of_run(&before, 2));
    // run 3 is kept whole; settling it added no rows here (its execution was closed)
    assert_eq!(of_run(&after, 3), of_run(&before, 3));
    let bytes_after = size(&b.db);
    assert!(
        bytes_after < bytes_before * 3 / 4,
        "{bytes_before} -> {bytes_after}"
    );
    assert!(out.contains(&format!("{bytes_after} bytes after")), "{out}");

    // the runs left still read and report
    let listing = smile_recon(&["runs", "--db", "runs.db", "--json"], common::KEY, dir);
    let v: serde_json::Value = serde_json::from_slice(&listing.stdout).unwrap();
    let ids: Vec<i64> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3]);
}

/// An identity whose finished run was pruned: the same manifest again is refused without
/// `--again`, as it was while the run was there (before, it became a new run and paid for
/// every row again); with `--again` it is a new generation whose derived job_ids are new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_identity_is_refused_without_again_and_new_with_it() {
    let b = batch::setup(20, 84, Faults::default(), None).await;
    let dir = b.dir.path();
    // The manifest without its job_id column: job_ids are derived from the identity.
    let mut reader = csv::Reader::from_path(&b.manifest).unwrap();
    let headers = reader.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|i| &headers[*i] != "job_id")
        .collect();
    assert!(keep.len() < headers.len(), "{headers:?}");
    let mut writer = csv::Writer::from_path(dir.join("derived.csv")).unwrap();
    writer
        .write_record(keep.iter().map(|i| &headers[*i]))
        .unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        writer
            .write_record(keep.iter().map(|i| &record[*i]))
            .unwrap();
    }
    writer.flush().unwrap();
    let url = b.sandbox.base_url();
    let submit = |again: bool| {
        let extra: &[&str] = if again { &["--again"] } else { &[] };
        submit_verify(dir, &url, "derived.csv", common::KEY, extra)
    };
    let first = submit(false);
    assert!(
        matches!(first.status.code(), Some(0 | 3)),
        "{}",
        text(&first)
    );
    let sent = b.sandbox.stats().accepted_submissions;
    assert!(sent > 0);
    rusqlite::Connection::open(&b.db)
        .unwrap()
        .execute(
            "UPDATE runs SET created_at = ?1",
            [smile_recon::store::now_ms() - 100 * 86_400_000],
        )
        .unwrap();
    let pruned = smile_recon(
        &["runs", "prune", "--older-than", "90d", "--db", "runs.db"],
        common::KEY,
        dir,
    );
    assert!(
        text(&pruned).contains("deleted 1 runs"),
        "{}",
        text(&pruned)
    );

    let refused = submit(false);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("pruned"), "{}", text(&refused));
    assert!(text(&refused).contains("--again"), "{}", text(&refused));
    assert_eq!(b.sandbox.stats().accepted_submissions, sent, "nothing sent");

    let again = submit(true);
    assert!(
        matches!(again.status.code(), Some(0 | 3)),
        "{}",
        text(&again)
    );
    let stats = b.sandbox.stats();
    assert_eq!(stats.accepted_submissions, 2 * sent, "{stats:?}");
    assert_eq!(stats.duplicate_rejections, 0, "{stats:?}");
}
