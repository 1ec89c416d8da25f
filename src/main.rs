fn main() -> std::process::ExitCode {
    // Before anything reads the API key: no core dump may hold it.
    if let Err(e) = smile_recon::cli::settings::disable_core_dumps() {
        eprintln!("smile-recon: warning: cannot disable core dumps: {e}");
    }
    let cli = match smile_recon::cli::parse() {
        Ok(cli) => cli,
        Err(e) => {
            smile_recon::log::say(true, &e.to_string());
            return std::process::ExitCode::from(e.outcome().code());
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smile-recon: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(smile_recon::exit::ExitStatus::Fatal.code());
        }
    };
    let outcome = runtime.block_on(smile_recon::cli::run(cli));
    std::process::ExitCode::from(outcome.code())
}
