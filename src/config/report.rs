//! The `[report]` section of a job spec, also kept with a run so that `resume` writes it.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    pub out: PathBuf,
    /// `discrepancies` (default), `errors` or `none`, like `--fail-on`.
    #[serde(default)]
    pub fail_on: Option<crate::exit::FailOn>,
}

pub fn default_formats() -> Vec<String> {
    crate::report::DEFAULT_FORMATS
        .split(',')
        .map(String::from)
        .collect()
}
