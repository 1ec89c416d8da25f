//! Per-request latency of the bare client against a running sandbox: what the machine and
//! the sandbox allow before the runner adds anything (BENCHMARKS.md, figure (3)).
//!
//! ```text
//! cargo build --release --example latency_probe
//! target/release/examples/latency_probe URL MANIFEST CONCURRENCY [REQUESTS]
//! ```
//! `MANIFEST` is a poll manifest (`user_id,job_id,...`) whose jobs the sandbox knows
//! (`sandbox generate --poll` writes both). Prints mean, p50, p99 and min in microseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smile_recon::api::{ApiKey, ClientConfig, Credentials, SmileClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: latency_probe URL MANIFEST CONCURRENCY [REQUESTS]";
    let url = args.next().ok_or(usage)?;
    let manifest = args.next().ok_or(usage)?;
    let concurrency: usize = args.next().ok_or(usage)?.parse()?;
    let requests: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(2000);
    let text = std::fs::read_to_string(&manifest)?;
    let pairs: Arc<Vec<(String, String)>> = Arc::new(
        text.lines()
            .skip(1)
            .take(requests)
            .filter_map(|l| {
                let mut f = l.split(',');
                Some((f.next()?.to_owned(), f.next()?.to_owned()))
            })
            .collect(),
    );
    let client = SmileClient::new(ClientConfig {
        base_url: url,
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(30),
        credentials: Credentials::new("002", ApiKey::new("bench-key-not-a-secret")?)?,
        extra_roots: Vec::new(),
    })?;
    let mut tasks = Vec::new();
    for k in 0..concurrency {
        let (client, pairs) = (client.clone(), pairs.clone());
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            for (user, job) in pairs.iter().skip(k).step_by(concurrency) {
                let started = Instant::now();
                client.job_status(user, job, false, false).await?;
                took.push(started.elapsed().as_micros());
            }
            Ok::<_, smile_recon::api::ApiError>(took)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_unstable();
    let n = all.len().max(1);
    println!(
        "c={concurrency} n={} mean {} us, p50 {}, p99 {}, min {}",
        all.len(),
        all.iter().sum::<u128>() / n as u128,
        all.get(n / 2).unwrap_or(&0),
        all.get(n * 99 / 100).unwrap_or(&0),
        all.first().unwrap_or(&0)
    );
    Ok(())
}
