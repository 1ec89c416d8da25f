//! The real binary, as the integration tests run it: in a folder, with a key and partner
//! in the environment, and none of the operator's own settings (`SMILE_RECON_LOG`,
//! `SMILE_RECON_DB`) leaking in.

use std::path::Path;
use std::process::{Command, Output};

use super::{KEY, PARTNER};

/// `smile-recon ARGS` in `cwd` with `key` as `SMILE_API_KEY`.
pub fn smile_recon(args: &[&str], key: &str, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smile-recon"))
        .args(args)
        .current_dir(cwd)
        .env("SMILE_API_KEY", key)
        .env("SMILE_PARTNER_ID", PARTNER)
        .env_remove("SMILE_RECON_LOG")
        .env_remove("SMILE_RECON_DB")
        .output()
        .expect("run the smile-recon binary")
}

/// [`smile_recon`] with the sandbox's key.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    smile_recon(args, KEY, cwd)
}

/// What the command printed, stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
