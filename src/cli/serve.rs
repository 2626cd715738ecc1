//! cli::serve: `gigatile serve`: settings from a TOML file, the environment and flags, logging,
//! signals, and the server.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use gigatile::config::{LogFormat, Settings, SettingsLayer};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML file of settings (keys as the flags below, with `_` for `-`); flags and
    /// environment variables win over it.
    #[arg(long, short = 'c', env = "GIGATILE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsLayer,
}

impl ServeArgs {
    /// The resolved settings: flags and environment over the file over `defaults` over the
    /// built-in defaults.
    pub fn settings(&self, defaults: SettingsLayer) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => SettingsLayer::from_file(path).map_err(anyhow::Error::msg)?,
            None => SettingsLayer::default(),
        };
        Settings::resolve(self.settings.clone().over(file).over(defaults))
            .map_err(anyhow::Error::msg)
    }
}

pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    serve(args.settings(SettingsLayer::default())?)
}

/// Starts logging and the server, and serves until SIGINT or SIGTERM.
pub fn serve(settings: Settings) -> anyhow::Result<()> {
    gigatile::memory::tune_allocator();
    init_logging(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gigatile-http")
        .build()?;
    runtime.block_on(async move {
        let address = std::net::SocketAddr::new(settings.host, settings.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        // The bound address: with PORT=0 the system chose the port.
        let bound = listener.local_addr().unwrap_or(address);
        eprintln!(
            "gigatile: serving {} on http://{bound}/",
            settings.data_dir.display()
        );
        gigatile::server::run(settings, listener, shutdown_signal())
            .await
            .context("the server stopped with an error")
    })
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .with_context(|| format!("LOG_LEVEL {:?} is not a log filter", settings.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot start logging: {e}"))
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
