//! The `astrolabe` binary: parses flags, sets up logging, runs the chosen command of the
//! application library (`astrolabe-server`) until SIGTERM or SIGINT, and maps errors to exit
//! codes (0 clean, 1 failure, 2 bad usage, which clap reports).

mod cli;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use cli::{Cli, Command, LogFormat, ServeArgs, SnapshotAction};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc's allocator. The ingest path allocates and frees millions of small
/// objects (each decoded Kubernetes object is dropped once it is in the graph); glibc spent ~28%
/// of an initial sync's CPU in malloc/free/consolidate plus ~14% zeroing pages it had given back
/// to the kernel (perf, docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `check` is a command-line tool: its report is the output, logs only say what went wrong.
    let default_level = if matches!(cli.command, Some(Command::Check(_))) {
        "warn"
    } else {
        "info"
    };
    init_tracing(cli.log_format, default_level);
    let command =
        cli.command
            .unwrap_or_else(|| match Cli::parse_from(["astrolabe", "serve"]).command {
                Some(command) => command,
                None => Command::Serve(ServeArgs::default()),
            });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("astrolabe: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Check(args) = command {
        return runtime.block_on(check(args));
    }
    match runtime.block_on(run(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("astrolabe: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(signals(shutdown.clone()));
    match command {
        Command::Serve(args) => astrolabe_server::run(args.into(), shutdown).await?,
        Command::Demo(args) => astrolabe_server::demo(args.into(), shutdown).await?,
        Command::Sim(args) => astrolabe_server::sim(args.into(), shutdown).await?,
        Command::Check(_) => anyhow::bail!("astrolabe check is run by main, with its exit codes"),
        Command::Snapshot(args) => {
            let said = match args.action {
                SnapshotAction::Export(args) => {
                    astrolabe_server::snapshot::export(&args.persist.into(), &args.file)
                        .await
                        .with_context(|| format!("exporting to {}", args.file.display()))?
                        .to_string()
                }
                SnapshotAction::Import(args) => {
                    astrolabe_server::snapshot::import(&args.persist.into(), &args.file)
                        .await
                        .with_context(|| format!("importing {}", args.file.display()))?
                        .to_string()
                }
            };
            println!("{said}");
        }
    }
    Ok(())
}

/// `astrolabe check`: the report on stdout; exit 0 clean, 1 findings at or above
/// `--fail-on`, 2 input that cannot be read (named with its file and line).
async fn check(args: cli::CheckArgs) -> ExitCode {
    use astrolabe_server::check::{self, CheckOptions, Format, Profile, Severity};
    let bad = |what: String| {
        eprintln!("astrolabe check: {what}");
        ExitCode::from(2)
    };
    let parsed = (
        args.output.parse::<Format>(),
        args.fail_on.parse::<Severity>(),
        args.profile.parse::<Profile>(),
    );
    let (Ok(format), Ok(fail_on), Ok(profile)) = parsed else {
        return bad(format!("bad flags: {parsed:?}"));
    };
    let rules = match check::rules(&astrolabe_server::rules::RulesConfig {
        file: args.relation_rules,
        builtin: args.builtin_rules,
    }) {
        Ok(rules) => rules,
        Err(e) => return bad(format!("{e}")),
    };
    let options = CheckOptions {
        inputs: args.inputs,
        profile,
        assume: args.assume,
    };
    let checked = match check::check(&options, &rules).await {
        Ok(checked) => checked,
        Err(e) => return bad(e.to_string()),
    };
    print!(
        "{}",
        check::report::render(&checked.findings, checked.objects, format)
    );
    if checked.findings.iter().any(|f| f.severity >= fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn signals(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => tracing::info!("SIGINT received"),
            _ = term.recv() => tracing::info!("SIGTERM received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    shutdown.cancel();
}

/// The log filter: `RUST_LOG` (default `info`) with kube's per-request and per-retry lines off
/// ([`astrolabe_informers::KUBE_LOG_DIRECTIVES`]) unless it names a kube target itself.
fn log_filter(rust_log: Option<&str>, default_level: &str) -> tracing_subscriber::EnvFilter {
    let kube = astrolabe_informers::KUBE_LOG_DIRECTIVES;
    let directives = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(set) if set.split(',').any(|d| d.trim_start().starts_with("kube")) => set.to_owned(),
        Some(set) => format!("{set},{kube}"),
        None => format!("{default_level},{kube}"),
    };
    tracing_subscriber::EnvFilter::try_new(directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{default_level},{kube}")))
}

fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default_level);
    // Colours only on a terminal: not in a file or a pod's log.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn kube_lines_stay_off_unless_rust_log_names_kube() {
        for set in [
            None,
            Some(""),
            Some("info"),
            Some("debug,astrolabe_kubesim=trace"),
        ] {
            let filter = log_filter(set, "info").to_string();
            assert!(
                filter.contains("kube_client::client::builder=off"),
                "{set:?}: {filter}"
            );
        }
        let filter = log_filter(Some("info,kube_client=debug"), "info").to_string();
        assert!(!filter.contains("builder=off"), "{filter}");
    }
}
