//! `export`: a run's jobs or its audit trail on stdout.

use std::io::Write;

use crate::exit::{Error, Outcome};
use crate::report::Pii;
use crate::report::export::{self, ExportFormat};
use crate::store::{JobState, Store};

use super::args::{ExportArgs, ExportFormatArg};

pub fn run(args: ExportArgs) -> Result<Outcome, Error> {
    if !args.store.db.exists() {
        return Err(Error::fatal(format!(
            "{}: no such database (pass --db PATH)",
            args.store.db.display()
        )));
    }
    let mut states = Vec::new();
    for s in &args.state {
        let state = JobState::parse(s.trim()).ok_or_else(|| {
            Error::usage(format!(
                "--state: unknown state {s:?} (queued, in_flight, awaiting, done, failed, \
                 gave_up, invalid)"
            ))
        })?;
        states.push(state);
    }
    let format = match args.format {
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
    };
    let store = Store::open_read_only(&args.store.db).map_err(fatal)?;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(stdout);
    if args.events {
        export::events(&store, args.run, format, &mut out, "stdout").map_err(fatal)?;
    } else {
        let pii = Pii::from_show_pii(args.show_pii);
        export::jobs(&store, args.run, format, &states, pii, &mut out, "stdout").map_err(fatal)?;
    }
    out.flush().map_err(|e| fatal(format!("stdout: {e}")))?;
    Ok(Outcome::Success)
}

fn fatal(e: impl std::fmt::Display) -> Error {
    Error::fatal(e.to_string())
}
