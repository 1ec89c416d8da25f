//! smile-recon: a batch runner for Smile ID Identity Verification and job_status
//! reconciliation. `main` builds the runtime and calls [`cli::run`].

pub mod api;
pub mod cli;
pub mod engine;
pub mod exit;
pub mod files;
pub mod job_spec;
pub mod manifest;
pub mod provenance;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod store;
