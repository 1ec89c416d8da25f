//! A run's identity on the real binary: the same manifest submitted again is refused (it
//! would pay for every row again), the same identity in a fresh database derives the same
//! job_ids (Smile ID answers 2215 and the result is read, not paid for), `--again` is a
//! stated new run, and a run is finished only once its reports are written.

mod common;

use common::cli::{run as smile_recon, text};

use std::path::Path;

use common::batch;
use smile_recon::job_spec::RunMode;
use smile_recon::runner::{self, Layer, Target};
use smile_recon::sandbox::Faults;
use smile_recon::store::{RunStatus, Store};

fn job_ids(db: &Path, run: i64) -> Vec<String> {
    let store = Store::open_read_only(db).unwrap();
    let mut ids = Vec::new();
    store
        .for_each_job(run, |j| {
            ids.push(j.job_id);
            Ok(())
        })
        .unwrap();
    ids.sort();
    ids
}

/// The manifest without its `job_id` column: every job_id is derived.
fn drop_job_ids(path: &Path) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let headers = reader.headers().unwrap().clone();
    let keep: Vec<usize> = (0..headers.len())
        .filter(|&i| &headers[i] != "job_id")
        .collect();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let mut writer = csv::Writer::from_path(path).unwrap();
    for record in std::iter::once(&headers).chain(records.iter()) {
        writer
            .write_record(keep.iter().map(|&i| &record[i]))
            .unwrap();
    }
    writer.flush().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_manifest_is_paid_for_once_in_any_database_unless_again() {
    // One sandbox process throughout: it keeps its jobs in memory.
    let b = batch::setup(20, 91, Faults::default(), None).await;
    drop_job_ids(&b.manifest);
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let submit = |db: &str, extra: &[&str]| {
        let mut args = vec![
            "submit",
            "--manifest",
            "manifest.csv",
            "--endpoint",
            "verify",
            "--base-url",
            &url,
            "--rate",
            "0",
            "--db",
            db,
            "--quiet",
        ];
        args.extend_from_slice(extra);
        smile_recon(&args, dir)
    };
    let first = submit("a.db", &[]);
    let first_code = first.status.code();
    assert!(matches!(first_code, Some(0 | 3)), "{}", text(&first));
    let accepted = b.sandbox.stats().accepted_submissions;
    assert!(accepted > 0);

    // The same command again into the same database: refused, naming the run and --again.
    let second = submit("a.db", &[]);
    assert_eq!(second.status.code(), Some(1), "{}", text(&second));
    let said = text(&second);
    assert!(said.contains("run 1") && said.contains("--again"), "{said}");
    assert!(said.contains("finished on 20"), "the date: {said}");
    assert_eq!(b.sandbox.stats().accepted_submissions, accepted);

    // A fresh database, the same identity: the same job_ids, Smile ID refuses them as
    // duplicates (2215) and the results are read, not paid for again.
    let fresh = submit("b.db", &[]);
    assert_eq!(fresh.status.code(), first_code, "{}", text(&fresh));
    let stats = b.sandbox.stats();
    assert_eq!(stats.accepted_submissions, accepted, "paid twice");
    assert!(stats.duplicate_rejections > 0);
    let a_ids = job_ids(&dir.join("a.db"), 1);
    assert_eq!(job_ids(&dir.join("b.db"), 1), a_ids);
    let a = Store::open_read_only(&dir.join("a.db")).unwrap();
    let b_store = Store::open_read_only(&dir.join("b.db")).unwrap();
    let (a_counts, _) = a.counts(1).unwrap();
    let (b_counts, _) = b_store.counts(1).unwrap();
    assert_eq!(a_counts, b_counts, "the re-read results differ");

    // --again: a new run of the identity, said so, under new job_ids (paid again).
    let again = submit("a.db", &["--again"]);
    assert!(
        matches!(again.status.code(), Some(0 | 3)),
        "{}",
        text(&again)
    );
    assert!(
        text(&again).contains("--again: a new run"),
        "{}",
        text(&again)
    );
    let new_ids = job_ids(&dir.join("a.db"), 2);
    assert_eq!(new_ids.len(), a_ids.len());
    assert!(new_ids.iter().all(|id| !a_ids.contains(id)));
    assert!(b.sandbox.stats().accepted_submissions > accepted);
    let run2 = a.run(2).unwrap().unwrap();
    assert_eq!(run2.generation, 1);
}

/// What a kill -9 right after the last job turned final leaves: every job final, the
/// reports not written. The run is not `finished` then, so the same command writes the
/// reports and sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_before_its_reports_writes_them_and_sends_nothing() {
    let b = batch::setup(15, 92, Faults::default(), None).await;
    let dir = b.dir.path();
    let spec = dir.join("nightly.toml");
    std::fs::write(
        &spec,
        format!(
            "mode = \"submit\"\ndb = \"runs.db\"\n[manifest]\npath = \"manifest.csv\"\n\
             [api]\nbase_url = \"{}\"\n[limits]\nrate = 0\n[submit]\nendpoint = \"verify\"\n\
             [report]\nout = \"reports/{{name}}-{{run}}\"\nformats = [\"json\"]\n",
            b.sandbox.base_url()
        ),
    )
    .unwrap();
    // The library runs the engine and returns before the reports, as a kill would leave it.
    let mut request = b.request(
        RunMode::Submit,
        Layer {
            partner_id: Some(common::PARTNER.into()),
            api_key_file: Some(b.key_file.clone()),
            ..Layer::default()
        },
    );
    request.target = Target::Spec(spec.clone());
    let finished = runner::execute(request).await.unwrap();
    assert!(finished.reports_pending);
    drop(finished);
    let run = Store::open_read_only(&b.db)
        .unwrap()
        .run(1)
        .unwrap()
        .unwrap();
    assert_ne!(run.status, RunStatus::Finished);
    let report_dir = dir.join("reports/nightly-1");
    assert!(
        report_dir.is_dir(),
        "the folder is made before anything is sent"
    );
    assert_eq!(std::fs::read_dir(&report_dir).unwrap().count(), 0);
    let requests = b.sandbox.stats().total_requests;

    // The same command (the database from the spec): reports written, nothing sent.
    let again = smile_recon(&["run", "nightly.toml", "--quiet"], dir);
    assert!(
        matches!(again.status.code(), Some(0 | 3)),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("exit "), "{}", text(&again));
    assert_eq!(b.sandbox.stats().total_requests, requests);
    assert!(std::fs::read_dir(&report_dir).unwrap().count() > 0);
    // The reports, written just before the run is marked finished, already say it is.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["run"]["status"], "finished", "{summary}");
    assert!(summary["run"]["finished_at"].is_string(), "{summary}");
    let run = Store::open_read_only(&b.db)
        .unwrap()
        .run(1)
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Finished);
    // And now it is finished: the same command is refused.
    let refused = smile_recon(&["run", "nightly.toml", "--quiet"], dir);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
}
