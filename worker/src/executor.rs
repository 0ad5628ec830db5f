//! `quarry worker`: a Ballista executor with Quarry's codecs, object stores and cluster
//! secret, joined to a coordinator's scheduler.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista_core::extension::SessionConfigExt;
use ballista_core::utils::create_grpc_server;
use ballista_executor::ArrowFlightServerProvider;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::flight_service::BallistaFlightService;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::SessionConfig;
use quarry_connectors::{ConnectorRegistry, QuarryOptions};
use quarry_files::{QuarryObjectStoreRegistry, S3Config};
use tonic::service::interceptor::InterceptedService;

use crate::catalogs::FlightCatalogResolver;
use crate::cluster::ClusterSecret;
use crate::codec::{QuarryLogicalCodec, QuarryPhysicalCodec};
use crate::engine::CancellableEngine;
use crate::gate::{TaskServiceAddresses, serve_gate};

/// Seconds between a worker's heartbeats (the coordinator declares a worker dead after
/// ten seconds without one).
pub const HEARTBEAT_SECONDS: u64 = 2;

/// How long a worker keeps an idle Flight client to another worker (Ballista's default).
const FLIGHT_CLIENT_TTL: Duration = Duration::from_secs(30);

/// How to start a worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The coordinator's scheduler address (`quarry coordinator --scheduler-listen`).
    pub coordinator_host: String,
    pub coordinator_port: u16,
    /// The address this worker binds and advertises (other workers and the coordinator
    /// connect to it).
    pub listen: IpAddr,
    /// Where shuffle files and spills go.
    pub work_dir: PathBuf,
    /// Memory the worker's queries may use in all; `None`: Ballista's default share of the
    /// host's memory.
    pub memory_limit: Option<u64>,
    /// Task slots; 0: one per core.
    pub slots: usize,
    pub s3: S3Config,
    pub secret: ClusterSecret,
}

/// Runs the worker until SIGINT/SIGTERM or until the coordinator refuses it.
pub async fn run_worker(options: WorkerOptions) -> Result<(), String> {
    std::fs::create_dir_all(&options.work_dir).map_err(|e| {
        format!(
            "cannot create work directory {}: {e}",
            options.work_dir.display()
        )
    })?;
    let tasks = TaskServiceAddresses::pick(options.listen)?;
    let config = executor_config(&options, tasks)?;
    let gate = serve_gate(
        tasks,
        &options.secret,
        config.grpc_max_decoding_message_size as usize,
    )?;
    eprintln!(
        "quarry: {} joining {}:{} (work directory {}, task service {})",
        config.executor_id,
        options.coordinator_host,
        options.coordinator_port,
        options.work_dir.display(),
        tasks.public,
    );
    let executor = start_executor_process(Arc::new(config));
    tokio::select! {
        stopped = executor => stopped.map_err(|e| format!("worker stopped: {e}")),
        gate = gate => match gate {
            Ok(result) => result,
            Err(e) => Err(format!("the worker's task service failed: {e}")),
        },
    }
}

/// The executor's configuration: ephemeral ports, Quarry's codecs, object stores, secret.
/// Ballista's own task service listens on `tasks.private`; the worker advertises
/// `tasks.public`, where the gate listens (see [`crate::gate`]).
fn executor_config(
    options: &WorkerOptions,
    tasks: TaskServiceAddresses,
) -> Result<ExecutorProcessConfig, String> {
    let host = options.listen.to_string();
    let work_dir = options.work_dir.display().to_string();
    let secret = options.secret.clone();
    let registry = Arc::new(QuarryObjectStoreRegistry::new(options.s3.clone()));
    let spill_dir = options.work_dir.clone();

    let config_secret = secret.clone();
    // One registry per worker: connection pools live as long as the worker.
    let connectors = Arc::new(ConnectorRegistry::new(Arc::new(
        FlightCatalogResolver::new(
            &options.coordinator_host,
            options.coordinator_port,
            secret.clone(),
        ),
    )));
    let flight_secret = secret.clone();
    let port = free_port(options.listen)?;
    // Ballista hands the provider its bind host (the private one) and the Flight port; the
    // Flight service listens on the worker's public address.
    let flight_address = SocketAddr::new(options.listen, port);
    let flight: Arc<ArrowFlightServerProvider> =
        Arc::new(move |work_dir, _address, mut shutdown, grpc| {
            let service = InterceptedService::new(
                FlightServiceServer::new(BallistaFlightService::new(work_dir))
                    .max_decoding_message_size(usize::MAX)
                    .max_encoding_message_size(usize::MAX),
                flight_secret.interceptor(),
            );
            tokio::spawn(async move {
                create_grpc_server(&grpc)
                    .add_service(service)
                    .serve_with_shutdown(flight_address, shutdown.recv())
                    .await
                    .map_err(ballista_core::error::BallistaError::TonicError)
            })
        });

    Ok(ExecutorProcessConfig {
        // Readable and unique in the cluster: the worker's Flight address.
        executor_id: worker_id(options.listen, port),
        bind_host: tasks.private.ip().to_string(),
        external_host: Some(host),
        port,
        grpc_port: tasks.public.port(),
        scheduler_host: options.coordinator_host.clone(),
        scheduler_port: options.coordinator_port,
        scheduler_connect_timeout_seconds: 30,
        vcores: options.slots,
        work_dir: Some(work_dir),
        memory_pool_size: options.memory_limit,
        executor_heartbeat_interval_seconds: HEARTBEAT_SECONDS,
        override_logical_codec: Some(Arc::new(QuarryLogicalCodec::new(None))),
        override_physical_codec: Some(Arc::new(QuarryPhysicalCodec::default())),
        override_runtime_producer: Some(Arc::new(move |_| {
            Ok(Arc::new(
                RuntimeEnvBuilder::new()
                    .with_object_store_registry(registry.clone())
                    .with_temp_file_path(spill_dir.clone())
                    .build()?,
            ))
        })),
        override_config_producer: Some(Arc::new(move || {
            SessionConfig::new_with_ballista()
                .with_ballista_override_create_grpc_client_endpoint(
                    config_secret.endpoint_override(),
                )
                .with_option_extension(QuarryOptions::default())
                .with_extension(Arc::clone(&connectors))
        })),
        override_create_grpc_client_endpoint: Some(secret.endpoint_override()),
        override_arrow_flight_service: Some(flight),
        override_execution_engine: Some(Arc::new(CancellableEngine::new(FLIGHT_CLIENT_TTL))),
        ..Default::default()
    })
}

/// The id a worker has in `system.runtime.nodes`: the address its Flight service listens on.
pub fn worker_id(host: IpAddr, flight_port: u16) -> String {
    format!("worker-{host}:{flight_port}")
}

/// A port free on `host` now. Ballista binds and advertises the port it is given (0 would
/// be advertised as 0), so the worker picks one first.
fn free_port(host: IpAddr) -> Result<u16, String> {
    TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot bind {host}: {e}"))
}
