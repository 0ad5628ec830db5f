//! The `quarry` command: embedded engine, shell, and TPC-H tools.

mod config;
mod remote;
mod render;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use quarry_coordinator::{Cluster, Engine, EngineConfig, ensure_tpch};
use quarry_worker::{ClusterSecret, WorkerOptions};

use crate::render::Format;
use crate::shell::Script;

#[derive(Parser)]
#[command(
    name = "quarry",
    version,
    about = "Quarry: federated SQL over data where it lives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Quarry embedded: metastore and warehouse in one data directory, no server needed.
    Local(LocalArgs),
    /// Open the shell: on a data directory (nothing generated), or with --host on a running
    /// Quarry.
    Shell(ShellArgs),
    /// Run the coordinator of a cluster: metastore, PostgreSQL front end, Ballista scheduler.
    Coordinator(CoordinatorArgs),
    /// Run a worker (a Ballista executor) that joins a coordinator.
    Worker(WorkerArgs),
    /// Crawl a location (s3:// or a local folder) into the metastore: files become tables
    /// and partitions, as `CREATE CRAWLER ... ; RUN CRAWLER ...` would make them.
    Crawl(CrawlArgs),
    /// TPC-H tools.
    Tpch {
        #[command(subcommand)]
        command: TpchCommand,
    },
}

#[derive(Args)]
struct DataArgs {
    /// Data directory holding the metastore and the local warehouse.
    #[arg(long, default_value = "quarry-data", env = "QUARRY_DATA_DIR")]
    data_dir: PathBuf,
    /// Configuration file (S3 buckets, ...); default: DATA_DIR/quarry.toml when present.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Shared metastore instead of SQLite in the data directory:
    /// postgres://user@host/db or mysql://user@host/db (the database must exist).
    #[arg(long, env = "QUARRY_METASTORE_URL")]
    metastore_url: Option<String>,
}

#[derive(Args)]
struct ScriptArgs {
    /// Run this SQL and exit (may be repeated).
    #[arg(short = 'e', long = "execute", value_name = "SQL")]
    execute: Vec<String>,
    /// Run the statements in this file and exit.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Output format of query results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The TPC-H data `quarry local` and `quarry coordinator` generate on first start.
#[derive(Args)]
struct TpchOptions {
    /// TPC-H scale factor generated into database `tpch` on first start.
    #[arg(long, default_value_t = 0.1)]
    tpch_sf: f64,
    /// Do not generate TPC-H data.
    #[arg(long)]
    no_tpch: bool,
}

impl TpchOptions {
    /// Generates database `tpch` unless it exists or `--no-tpch` was given.
    async fn ensure(&self, engine: &Engine) -> Result<(), String> {
        if !self.no_tpch
            && let Some(message) = ensure_tpch(engine, self.tpch_sf)
                .await
                .map_err(|e| e.user_message())?
        {
            eprintln!("quarry: {message}");
        }
        Ok(())
    }
}

/// How the PostgreSQL front end secures connections.
#[derive(Args)]
struct ServeArgs {
    /// Connections served at once; more are refused with SQLSTATE 53300.
    #[arg(long, value_name = "N", default_value_t = quarry_pgwire::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// PEM certificate (chain) for TLS; clients asking for TLS (sslmode=require) get it.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse connections without TLS (FATAL, SQLSTATE 28000).
    #[arg(long, requires = "tls_cert")]
    require_tls: bool,
    /// Creates this administrator, with the password in QUARRY_ADMIN_PASSWORD, when the
    /// user does not exist yet (passwords required: the coordinator, local --auth scram).
    #[arg(long, value_name = "NAME")]
    admin_user: Option<String>,
}

/// The environment variable holding the first administrator's password.
const ADMIN_PASSWORD_ENV: &str = "QUARRY_ADMIN_PASSWORD";

/// How `quarry local --listen` authenticates.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LocalAuth {
    /// Any user name, no password (for loopback use).
    Trust,
    /// SCRAM-SHA-256 passwords of the users in the metastore.
    Scram,
}

#[derive(Args)]
struct LocalArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    tpch: TpchOptions,
    /// Also serve the PostgreSQL wire protocol on HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Authentication of --listen connections: trust (any user, no password) or scram
    /// (passwords of the users in the metastore).
    #[arg(long, value_enum, default_value_t = LocalAuth::Trust)]
    auth: LocalAuth,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    script: ScriptArgs,
}

#[derive(Args)]
struct CoordinatorArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    tpch: TpchOptions,
    /// Where the PostgreSQL front end listens.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5433")]
    listen: String,
    #[command(flatten)]
    serve: ServeArgs,
    /// Where the scheduler listens for workers (gRPC).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
    scheduler_listen: String,
}

#[derive(Args)]
struct WorkerArgs {
    /// The coordinator's scheduler address (its --scheduler-listen).
    #[arg(long, value_name = "HOST:PORT")]
    coordinator: String,
    /// Where shuffle files and spills go; default: a new folder in the temporary
    /// directory, removed when the worker stops.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// The address this worker binds and advertises to the cluster (its ports are
    /// chosen by the system).
    #[arg(long, value_name = "HOST", default_value = "127.0.0.1")]
    listen: std::net::IpAddr,
    /// Memory all queries on this worker may use, e.g. 4GiB or 512MB; operators that
    /// can spill do so to the work directory. Default: a share of the host's memory.
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<bytesize::ByteSize>,
    /// Task slots; default: one per core.
    #[arg(long, default_value_t = 0)]
    slots: usize,
    /// Configuration file (S3 buckets, ...).
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct CrawlArgs {
    #[command(flatten)]
    data: DataArgs,
    /// What to crawl: s3://bucket/prefix/ or a local folder.
    location: String,
    /// Database the tables go to; created when missing.
    #[arg(long)]
    database: String,
    /// Name the crawler is kept under (re-runs with the same name are incremental);
    /// default: crawl_DATABASE.
    #[arg(long)]
    name: Option<String>,
    /// Cron schedule (UTC) for `quarry local --listen` and `quarry coordinator` to run it.
    #[arg(long)]
    schedule: Option<String>,
    /// Absolute folder level of tables (bucket = 1); default: one below LOCATION.
    #[arg(long)]
    table_level: Option<String>,
    /// New columns: update (added to tables) or log (only reported).
    #[arg(long, value_name = "update|log")]
    schema_change: Option<String>,
    /// Vanished partitions and tables: delete or log.
    #[arg(long, value_name = "delete|log")]
    delete_behavior: Option<String>,
    /// Put before every table name.
    #[arg(long)]
    table_prefix: Option<String>,
    /// Glob of keys to leave out, relative to LOCATION (may be repeated).
    #[arg(long)]
    exclude: Vec<String>,
    /// Names of unnamed partition levels, e.g. year,month,day.
    #[arg(long)]
    partition_names: Option<String>,
}

#[derive(Args)]
struct ShellArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Connect to a running Quarry (a coordinator, or `quarry local --listen`) instead of
    /// opening a data directory.
    #[arg(long, value_name = "HOST")]
    host: Option<String>,
    /// Port of the running Quarry's PostgreSQL front end.
    #[arg(long, default_value_t = 5433, requires = "host")]
    port: u16,
    /// User name to connect as.
    #[arg(long, short = 'U', default_value = "quarry", requires = "host")]
    user: String,
    /// TLS to the running Quarry, as psql's sslmode: disable, prefer (TLS when offered,
    /// certificate not checked), require (TLS, certificate not checked), verify-full (TLS,
    /// certificate signed by --sslrootcert for the host name).
    #[arg(long, value_enum, default_value = "prefer", requires = "host")]
    sslmode: remote::SslMode,
    /// PEM file of the certificate authorities `--sslmode verify-full` trusts.
    #[arg(long, value_name = "FILE", requires = "host")]
    sslrootcert: Option<PathBuf>,
    #[command(flatten)]
    script: ScriptArgs,
}

#[derive(Subcommand)]
enum TpchCommand {
    /// Generate TPC-H data files.
    Generate {
        #[arg(long, default_value_t = 1.0)]
        sf: f64,
        #[arg(long, value_enum, default_value_t = TpchFormat::Parquet)]
        format: TpchFormat,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum TpchFormat {
    Parquet,
    Csv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUARRY_LOG")
                // Ballista's scheduler turns round-robin repartitioning off for every job
                // (as it must) and warns about it each time: not news for the user.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,ballista_scheduler::state::session_manager=error",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quarry: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("quarry: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn open_engine(data: &DataArgs) -> Result<Engine, String> {
    let mut config = EngineConfig::new(&data.data_dir);
    config.s3 = config::load(data.config.as_deref(), &data.data_dir)?.s3;
    config.metastore_url = data.metastore_url.clone();
    Engine::open(config).await.map_err(|e| e.user_message())
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Local(args) => {
            let auth = match args.auth {
                LocalAuth::Trust => quarry_pgwire::AuthMode::Trust,
                LocalAuth::Scram => quarry_pgwire::AuthMode::Scram,
            };
            if args.listen.is_none()
                && (args.serve.tls_cert.is_some()
                    || args.auth == LocalAuth::Scram
                    || args.serve.admin_user.is_some())
            {
                return Err(
                    "--tls-cert, --auth scram and --admin-user are options of --listen".into(),
                );
            }
            if args.serve.admin_user.is_some() && args.auth == LocalAuth::Trust {
                return Err(
                    "--admin-user creates a user to log in with: it needs --auth scram \
                     (trusted connections need no users)"
                        .into(),
                );
            }
            let tls = args.serve.load_tls()?;
            let engine = open_engine(&args.data).await?;
            // Before anything slow: a server nobody can log in to is a startup error.
            if auth == quarry_pgwire::AuthMode::Scram {
                args.serve.ensure_admin(&engine).await?;
            }
            args.tpch.ensure(&engine).await?;
            let Some(listen) = args.listen else {
                return shell::run(engine, Script::from(args.script)).await;
            };
            let server = start_server(engine.clone(), listen, &args.serve, tls, auth).await?;
            let scheduler = quarry_crawler::spawn_scheduler(engine.crawlers().clone());
            let code = shell::run(engine, Script::from(args.script)).await?;
            // The end of the shell's input ends the shell, not the server.
            wait_for_stop_signal().await;
            scheduler.abort();
            server.stop().await?;
            Ok(code)
        }
        Command::Shell(args) => match &args.host {
            Some(host) => {
                let remote = remote::Remote::connect(remote::Target {
                    host,
                    port: args.port,
                    user: &args.user,
                    ssl_mode: args.sslmode,
                    root_cert: args.sslrootcert.as_deref(),
                })
                .await?;
                shell::run_on(shell::Backend::Remote(remote), Script::from(args.script)).await
            }
            None => {
                let engine = open_engine(&args.data).await?;
                shell::run(engine, Script::from(args.script)).await
            }
        },
        Command::Coordinator(args) => run_coordinator(args).await,
        Command::Worker(args) => run_worker(args).await,
        Command::Crawl(args) => run_crawl(args).await,
        Command::Tpch {
            command: TpchCommand::Generate { sf, format, out },
        } => {
            let format = match format {
                TpchFormat::Parquet => quarry_tpch::FileFormat::Parquet,
                TpchFormat::Csv => quarry_tpch::FileFormat::Csv,
            };
            let started = std::time::Instant::now();
            let tables =
                tokio::task::spawn_blocking(move || quarry_tpch::generate(sf, format, &out))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            for t in &tables {
                println!("{:<10} {:>10} rows  {}", t.name, t.rows, t.dir.display());
            }
            eprintln!("generated in {:.1} s", started.elapsed().as_secs_f64());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_coordinator(args: CoordinatorArgs) -> Result<ExitCode, String> {
    let secret = ClusterSecret::from_env("coordinator")?;
    let tls = args.serve.load_tls()?;
    let engine = open_engine(&args.data).await?;
    // Before anything slow: a coordinator nobody can log in to is a startup error.
    args.serve.ensure_admin(&engine).await?;
    args.tpch.ensure(&engine).await?;
    let listener = tokio::net::TcpListener::bind(&args.scheduler_listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.scheduler_listen))?;
    let cluster = Cluster::start(&engine, listener, secret)
        .await
        .map_err(|e| e.user_message())?;
    println!(
        "workers join: quarry worker --coordinator {}",
        cluster.address()
    );
    let scheduler = quarry_crawler::spawn_scheduler(engine.crawlers().clone());
    let server = start_server(
        engine,
        args.listen,
        &args.serve,
        tls,
        quarry_pgwire::AuthMode::Scram,
    )
    .await?;
    wait_for_stop_signal().await;
    scheduler.abort();
    server.stop().await?;
    Ok(ExitCode::SUCCESS)
}

/// `quarry crawl`: stores (or updates) the crawler, runs it once and prints the run.
async fn run_crawl(args: CrawlArgs) -> Result<ExitCode, String> {
    let location = if args.location.contains("://") {
        args.location.clone()
    } else {
        std::path::absolute(&args.location)
            .map_err(|e| format!("bad location {}: {e}", args.location))?
            .to_string_lossy()
            .into_owned()
    };
    let mut pairs: Vec<(&str, String)> = Vec::new();
    let optional = [
        ("schedule", &args.schedule),
        ("table_level", &args.table_level),
        ("schema_change", &args.schema_change),
        ("delete_behavior", &args.delete_behavior),
        ("table_prefix", &args.table_prefix),
        ("partition_names", &args.partition_names),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            pairs.push((name, value.clone()));
        }
    }
    if !args.exclude.is_empty() {
        pairs.push(("exclude", args.exclude.join(",")));
    }
    let database = args.database.to_lowercase();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("crawl_{database}"));
    let options = quarry_crawler::CrawlerOptions::from_pairs(
        &name,
        pairs.iter().map(|(k, v)| (*k, v.as_str())),
    )
    .map_err(|e| e.to_string())?;
    let engine = open_engine(&args.data).await?;
    let crawlers = engine.crawlers();
    let definition = quarry_crawler::CrawlerDefinition {
        name: name.clone(),
        location,
        database,
        options,
    };
    crawlers
        .create(definition, true)
        .await
        .map_err(|e| e.to_string())?;
    let run = crawlers.run(&name).await.map_err(|e| e.to_string())?;
    println!(
        "crawler {}: {} ({} objects listed, {} read; tables: {} created, {} updated, {} deleted; partitions: {} added, {} removed)",
        run.crawler,
        run.status,
        run.objects_listed,
        run.objects_read,
        run.tables_created,
        run.tables_updated,
        run.tables_deleted,
        run.partitions_added,
        run.partitions_removed
    );
    for line in run.log.lines() {
        println!("  {line}");
    }
    for line in run.errors.lines() {
        eprintln!("quarry: {line}");
    }
    Ok(if run.status == "FAILED" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn run_worker(args: WorkerArgs) -> Result<ExitCode, String> {
    let secret = ClusterSecret::from_env("worker")?;
    let (host, port) = args
        .coordinator
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("--coordinator {}: expected HOST:PORT", args.coordinator))?;
    let s3 = match &args.config {
        Some(path) => config::load(Some(path), path)?.s3,
        None => Default::default(),
    };
    // A work directory of our own is removed when the worker stops.
    let (work_dir, _own) = match args.work_dir {
        Some(dir) => (dir, None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("quarry-worker-")
                .tempdir()
                .map_err(|e| format!("cannot create a work directory: {e}"))?;
            (dir.path().to_path_buf(), Some(dir))
        }
    };
    quarry_worker::run_worker(WorkerOptions {
        coordinator_host: host,
        coordinator_port: port,
        listen: args.listen,
        work_dir,
        memory_limit: args.memory_limit.map(|size| size.as_u64()),
        slots: args.slots,
        s3,
        secret,
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// The PostgreSQL front end running in the background.
struct RunningServer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    async fn stop(self) -> Result<(), String> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

impl ServeArgs {
    /// The TLS certificate and key, when given; an unusable one is an error naming the file.
    fn load_tls(&self) -> Result<Option<quarry_pgwire::Tls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => quarry_pgwire::Tls::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// Creates the administrator named by --admin-user when missing; fails when nobody
    /// could log in.
    async fn ensure_admin(&self, engine: &Engine) -> Result<(), String> {
        let password = std::env::var(ADMIN_PASSWORD_ENV).ok();
        let admin = match (&self.admin_user, &password) {
            (Some(name), Some(password)) => Some((name.as_str(), password.as_str())),
            (Some(name), None) => {
                let exists = engine
                    .metastore()
                    .get_user(name)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some();
                if !exists {
                    return Err(format!(
                        "--admin-user {name}: set the password of the new administrator in \
                         the environment variable {ADMIN_PASSWORD_ENV}"
                    ));
                }
                None
            }
            (None, _) => None,
        };
        let outcome = engine
            .ensure_admin(admin)
            .await
            .map_err(|e| e.user_message())?;
        if let (quarry_coordinator::users::AdminBootstrap::Created, Some(name)) =
            (outcome, &self.admin_user)
        {
            eprintln!("quarry: created administrator \"{name}\"");
        }
        Ok(())
    }
}

async fn start_server(
    engine: Engine,
    listen: String,
    serve: &ServeArgs,
    tls: Option<quarry_pgwire::Tls>,
    auth: quarry_pgwire::AuthMode,
) -> Result<RunningServer, String> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound_tx, bound) = tokio::sync::oneshot::channel();
    let security = format!(
        "{}; {}",
        match auth {
            quarry_pgwire::AuthMode::Trust =>
                "connections are trusted (any user name, no password; --auth scram requires passwords)",
            quarry_pgwire::AuthMode::Scram => "passwords are required (SCRAM-SHA-256)",
        },
        match (&tls, serve.require_tls) {
            (None, _) => "no TLS (--tls-cert/--tls-key to offer it)",
            (Some(_), false) => "TLS offered",
            (Some(_), true) => "TLS required",
        }
    );
    let config = quarry_pgwire::ServerConfig {
        listen: listen.clone(),
        max_connections: serve.max_connections,
        tls,
        require_tls: serve.require_tls,
        auth,
    };
    let task = tokio::spawn(quarry_pgwire::serve(
        engine,
        config,
        move |addr| {
            let _ = bound_tx.send(addr);
        },
        async move {
            let _ = stopped.await;
        },
    ));
    match bound.await {
        Ok(addr) => {
            eprintln!("quarry: serving the PostgreSQL protocol on {addr}; {security}");
            Ok(RunningServer { stop, task })
        }
        Err(_) => {
            let error = match task.await {
                Ok(Err(e)) => e.to_string(),
                Ok(Ok(())) => "the server stopped".to_string(),
                Err(e) => e.to_string(),
            };
            Err(format!("cannot listen on {listen}: {error}"))
        }
    }
}

/// Waits for SIGINT or SIGTERM.
async fn wait_for_stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

impl From<ScriptArgs> for Script {
    fn from(args: ScriptArgs) -> Self {
        Script {
            execute: args.execute,
            file: args.file,
            format: args.format,
        }
    }
}
