//! smile-recon: a batch runner for Smile ID Identity Verification and job_status
//! reconciliation. `main` builds the runtime and calls [`cli::run`].
//!
//! Dependencies run one way: `cli` -> `runner` -> `engine`, `store`, `manifest`, `report`,
//! `config` -> `api`; `sandbox` uses only `api`. Nothing below `cli` imports `cli`.

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod exit;
pub mod files;
pub mod job_spec;
pub mod log;
pub mod manifest;
pub mod provenance;
pub mod report;
pub mod runner;
pub mod sandbox;
pub mod store;
