//! The `astrolabe` binary: parses flags, sets up logging, runs the chosen command until SIGTERM
//! or SIGINT, and maps errors to exit codes (0 clean, 1 failure, 2 bad usage).

use std::process::ExitCode;

use astrolabe::cli::{Cli, Command, LogFormat, ServeArgs};
use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
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
        Command::Serve(args) => {
            let client = astrolabe_informers::client(
                args.cluster.kubeconfig.clone(),
                args.cluster.context.clone(),
            )
            .await?;
            astrolabe::app::serve(args, client, shutdown, |_| {}).await
        }
        Command::Demo(args) => astrolabe::emulator::demo(args, shutdown).await,
        Command::Sim(args) => astrolabe::emulator::sim(args, shutdown).await,
        Command::Snapshot(args) => astrolabe::snapshot::run(args.action).await,
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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_client=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
