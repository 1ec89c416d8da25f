//! The `[report]` section of a job spec, also kept with a run so that `resume` writes it.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    pub out: PathBuf,
}

pub fn default_formats() -> Vec<String> {
    crate::report::DEFAULT_FORMATS
        .split(',')
        .map(String::from)
        .collect()
}
