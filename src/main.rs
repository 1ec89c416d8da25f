use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = smile_recon::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("smile-recon: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(smile_recon::exit::Outcome::Fatal.code());
        }
    };
    let outcome = runtime.block_on(smile_recon::cli::run(cli));
    std::process::ExitCode::from(outcome.code())
}
