//! Unattended nights on the real binary: an interrupted run whose manifest tonight's export
//! overwrote is abandoned by `on_changed_manifest = "abandon"` and the night runs; hints
//! name the database; a manifest without rows exits 1 unless `--allow-empty`.

mod common;

use common::cli::{smile_recon, text};

use std::process::Command;

use common::batch;
use smile_recon::sandbox::Faults;
use smile_recon::store::{RunStatus, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_with_a_changed_manifest_is_abandoned_and_the_night_runs() {
    let b = batch::setup(20, 93, Faults::default(), None).await;
    let dir = b.dir.path();
    std::fs::create_dir(dir.join("jobs")).unwrap();
    std::fs::rename(&b.manifest, dir.join("jobs/manifest.csv")).unwrap();
    std::fs::write(
        dir.join("jobs/nightly.toml"),
        format!(
            "mode = \"submit\"\ndb = \"../state/nightly.db\"\n\
             on_changed_manifest = \"abandon\"\n\
             [manifest]\npath = \"manifest.csv\"\n[api]\nbase_url = \"{}\"\n\
             [limits]\nrate = 0\n[submit]\nendpoint = \"verify\"\n",
            b.sandbox.base_url()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.join("state")).unwrap();
    // Night 1 stops (a wrong key trips the breaker); its hint names the spec's database.
    let stopped = smile_recon(
        &["run", "jobs/nightly.toml", "--quiet"],
        "wrong-key-1234",
        dir,
    );
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    // The spec's paths are absolute (relative to the spec's folder, not to the working
    // directory), so the hint works pasted anywhere.
    let state = std::fs::canonicalize(dir).unwrap().join("state/nightly.db");
    let hint = format!("smile-recon resume --run 1 --db {}", state.display());
    assert!(text(&stopped).contains(&hint), "{}", text(&stopped));
    // Tonight's export overwrites the manifest.
    let manifest = dir.join("jobs/manifest.csv");
    let rows = std::fs::read_to_string(&manifest).unwrap();
    let fewer: Vec<&str> = rows.lines().take(15).collect();
    std::fs::write(&manifest, fewer.join("\n") + "\n").unwrap();

    let night = smile_recon(&["run", "jobs/nightly.toml", "--quiet"], common::KEY, dir);
    assert!(
        matches!(night.status.code(), Some(0 | 3)),
        "{}",
        text(&night)
    );
    assert!(text(&night).contains("run 1 abandoned"), "{}", text(&night));
    let store = Store::open_read_only(&dir.join("state/nightly.db")).unwrap();
    assert_eq!(store.run(1).unwrap().unwrap().status, RunStatus::Abandoned);
    let run2 = store.run(2).unwrap().unwrap();
    assert_eq!(run2.status, RunStatus::Finished);
    let (counts, _) = store.counts(2).unwrap();
    assert_eq!(counts.values().sum::<u64>(), 14, "tonight's 14 rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_a_changed_manifest_is_refused_with_a_pasteable_hint() {
    let b = batch::setup(10, 94, Faults::default(), None).await;
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let submit = |key: &str| {
        smile_recon(
            &[
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
                "big.db",
                "--quiet",
            ],
            key,
            dir,
        )
    };
    assert_eq!(submit("wrong-key-1234").status.code(), Some(1));
    let rows = std::fs::read_to_string(&b.manifest).unwrap();
    let fewer: Vec<&str> = rows.lines().take(5).collect();
    std::fs::write(&b.manifest, fewer.join("\n") + "\n").unwrap();
    let refused = submit(common::KEY);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("has changed since run 1"),
        "{}",
        text(&refused)
    );
    // resume against a database that does not exist: refused, and none is created
    let missing = smile_recon(&["resume", "--db", "none.db"], common::KEY, dir);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(!dir.join("none.db").exists(), "resume created a database");
    // resume of nothing and of a finished run: said so, the same exit code
    let fresh = smile_recon(
        &[
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
            "other.db",
            "--quiet",
        ],
        common::KEY,
        dir,
    );
    assert!(
        matches!(fresh.status.code(), Some(0 | 3)),
        "{}",
        text(&fresh)
    );
    let nothing = smile_recon(&["resume", "--db", "other.db"], common::KEY, dir);
    assert!(
        text(&nothing).contains("nothing to resume"),
        "{}",
        text(&nothing)
    );
    let finished = smile_recon(
        &["resume", "--run", "1", "--db", "other.db"],
        common::KEY,
        dir,
    );
    assert!(
        text(&finished).contains("run 1 is finished"),
        "{}",
        text(&finished)
    );
    assert_eq!(finished.status.code(), nothing.status.code());
    assert_eq!(finished.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_without_rows_exits_1_unless_allowed() {
    let b = batch::setup(5, 95, Faults::default(), None).await;
    let dir = b.dir.path();
    let url = b.sandbox.base_url();
    let rows = std::fs::read_to_string(&b.manifest).unwrap();
    let header = rows.lines().next().unwrap().to_owned();
    std::fs::write(&b.manifest, header + "\n").unwrap();
    let submit = |extra: &[&str]| {
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
            "runs.db",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        smile_recon(&args, common::KEY, dir)
    };
    let empty = submit(&[]);
    assert_eq!(empty.status.code(), Some(1), "{}", text(&empty));
    assert!(text(&empty).contains("no rows"), "{}", text(&empty));
    let allowed = submit(&["--allow-empty"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", text(&allowed));
    assert!(text(&allowed).contains("exit 0"), "{}", text(&allowed));
}

/// The first night: the spec's `db = "../state/nightly.db"` names a folder nobody made;
/// the run makes it (0700). A folder that cannot be made is named, with where the path
/// came from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_night_creates_the_database_folder() {
    use std::os::unix::fs::PermissionsExt;
    let b = batch::setup(5, 96, Faults::default(), None).await;
    let dir = b.dir.path();
    std::fs::create_dir(dir.join("jobs")).unwrap();
    std::fs::rename(&b.manifest, dir.join("jobs/manifest.csv")).unwrap();
    let spec = |db: &str| {
        format!(
            "mode = \"submit\"\ndb = \"{db}\"\n[manifest]\npath = \"manifest.csv\"\n\
             [api]\nbase_url = \"{}\"\n[limits]\nrate = 0\n[submit]\nendpoint = \"verify\"\n",
            b.sandbox.base_url()
        )
    };
    std::fs::write(dir.join("jobs/nightly.toml"), spec("../state/nightly.db")).unwrap();
    let night = smile_recon(&["run", "jobs/nightly.toml", "--quiet"], common::KEY, dir);
    assert!(
        matches!(night.status.code(), Some(0 | 3)),
        "{}",
        text(&night)
    );
    assert!(dir.join("state/nightly.db").is_file());
    let mode = std::fs::metadata(dir.join("state"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // A file where the folder should be: the message names the folder and the spec's db.
    std::fs::write(dir.join("blocked"), b"").unwrap();
    std::fs::write(dir.join("jobs/other.toml"), spec("../blocked/x/other.db")).unwrap();
    let refused = smile_recon(&["run", "jobs/other.toml", "--quiet"], common::KEY, dir);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let said = text(&refused);
    assert!(
        said.contains("blocked/x") && said.contains("cannot create"),
        "{said}"
    );
    assert!(said.contains("`db` in jobs/other.toml"), "{said}");
    // submit names --db the same way.
    let submit = smile_recon(
        &[
            "submit",
            "--manifest",
            "jobs/manifest.csv",
            "--db",
            "blocked/y/s.db",
        ],
        common::KEY,
        dir,
    );
    assert_eq!(submit.status.code(), Some(1), "{}", text(&submit));
    assert!(
        text(&submit).contains("comes from --db"),
        "{}",
        text(&submit)
    );
}

/// A run of `jobs/nightly.toml` started in one folder resumes with the printed hint from
/// another: the spec's manifest and database are stored absolute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_runs_hint_resumes_from_another_working_directory() {
    let b = batch::setup(5, 97, Faults::default(), None).await;
    let dir = b.dir.path();
    std::fs::create_dir_all(dir.join("srv/jobs")).unwrap();
    std::fs::create_dir_all(dir.join("srv/exports")).unwrap();
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    std::fs::rename(&b.manifest, dir.join("srv/exports/jobs.csv")).unwrap();
    std::fs::write(
        dir.join("srv/jobs/nightly.toml"),
        format!(
            "mode = \"submit\"\ndb = \"../state/nightly.db\"\n\
             [manifest]\npath = \"../exports/jobs.csv\"\n[api]\nbase_url = \"{}\"\n\
             [limits]\nrate = 0\n[submit]\nendpoint = \"verify\"\n",
            b.sandbox.base_url()
        ),
    )
    .unwrap();
    let srv = dir.join("srv");
    let stopped = smile_recon(
        &["run", "jobs/nightly.toml", "--quiet"],
        "wrong-key-1234",
        &srv,
    );
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    let said = text(&stopped);
    let hint = said
        .lines()
        .find_map(|l| l.split_once("smile-recon resume ").map(|(_, rest)| rest))
        .map(|rest| rest.split('`').next().unwrap_or(rest))
        .unwrap_or_else(|| panic!("no resume hint: {said}"));
    let args: Vec<&str> = std::iter::once("resume")
        .chain(hint.split_whitespace())
        .chain(["--quiet"])
        .collect();
    let resumed = smile_recon(&args, common::KEY, &dir.join("elsewhere"));
    assert!(
        matches!(resumed.status.code(), Some(0 | 3)),
        "{args:?}: {}",
        text(&resumed)
    );
}

/// `SMILE_RECON_DB=` (set but empty) is named, not reported as clap's "a value is required
/// for '--db'".
#[test]
fn an_empty_database_setting_names_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(["runs"])
        .current_dir(dir.path())
        .env("SMILE_RECON_DB", "")
        .output()
        .unwrap();
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty));
    assert!(
        text(&empty).contains("SMILE_RECON_DB is set but empty"),
        "{}",
        text(&empty)
    );
}

/// A spec's db that is empty or a folder names the spec and `db`, and no default database
/// is created meanwhile.
#[test]
fn a_spec_db_that_is_empty_or_a_folder_names_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    for db in ["\"\"", "\"state\""] {
        std::fs::write(
            dir.path().join("nightly.toml"),
            format!("mode = \"poll\"\ndb = {db}\n[manifest]\npath = \"x.csv\"\n"),
        )
        .unwrap();
        let out = smile_recon(&["run", "nightly.toml"], common::KEY, dir.path());
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let said = text(&out);
        assert!(said.contains("nightly.toml: db "), "{db}: {said}");
        assert!(!dir.path().join("smile-recon.db").exists(), "{db}: {said}");
    }
}
