//! `kith serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use kith_api::{ApiConfig, AppState};
use kith_bus::Bus;

use crate::config::Config;

/// Open the store from `config` and serve until Ctrl-C or SIGTERM.
pub fn run(config: &Config) -> Result<()> {
    let store = config.open_store()?;
    serve(store, config, |_| {})
}

/// Serve the API and run the bus's workers until a signal.
pub fn serve(store: Arc<dyn kith_core::Backend>, config: &Config, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    serve_with(config.open_bus(store)?, config, on_ready)
}

/// Serve the API over an existing bus and run its workers until a signal.
pub fn serve_with(bus: Arc<Bus>, config: &Config, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let workers = bus.start();
    let served = serve_http(bus.clone(), config, on_ready);
    bus.stop();
    for worker in workers {
        // A worker that panicked has logged why; stopping goes on.
        let _ = worker.join();
    }
    served
}

fn serve_http(bus: Arc<Bus>, config: &Config, on_ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&config.bind).await.with_context(|| format!("binding {}", config.bind))?;
        let addr = listener.local_addr()?;
        // The one line on stdout: scripts and tests read the address from it.
        println!("listening on http://{addr}");
        tracing::info!(%addr, database = %config.database_name(), "serving");
        on_ready(addr);
        // The dummy hash unknown logins are checked against, made before the first sign-in.
        tokio::task::spawn_blocking(kith_core::console::prepare);
        let state = AppState::new(
            bus,
            ApiConfig {
                body_limit: config.body_limit_bytes,
                console: Some(crate::console::console()),
                cookie_secure: config.console.cookie_secure.into(),
                ..ApiConfig::default()
            },
        );
        let server = kith_api::serve(listener, state, shutdown_signal());
        tokio::select! {
            result = server => result.context("serving HTTP")?,
            // Event streams never end by themselves; after a signal, give other requests a moment, then stop.
            _ = async { shutdown_signal().await; tokio::time::sleep(Duration::from_secs(5)).await } => {}
        }
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
