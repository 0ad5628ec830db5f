//! Quarry's crawler: what the AWS Glue crawler does, open and explainable. Point it at a
//! prefix of files and the metastore ends up with tables, columns and partitions, kept
//! current as data arrives.
//!
//! * [`CrawlerDefinition`]: location, target database and [`CrawlerOptions`], stored in
//!   the metastore.
//! * [`CrawlerService`] creates, lists, drops and runs crawlers; every run is recorded
//!   (`system.crawler.runs`) with what it read, created, changed and why.
//! * [`spawn_scheduler`] runs crawlers on their cron [`Schedule`]s.
//!
//! How a run decides (see `docs/crawler.md`): each child folder of the location is a
//! table unless the location itself holds data files or partition folders; folders below
//! a table are partitions (`k=v` names their key, others become `partition_0, ...`);
//! files of a table share a format and compatible columns, and a plain folder that does
//! not fit becomes a table of its own. Re-runs read only folders whose listing changed.
//!
//! ```no_run
//! # async fn demo(service: quarry_crawler::CrawlerService) -> quarry_crawler::Result<()> {
//! use quarry_crawler::{CrawlerDefinition, CrawlerOptions};
//! let def = CrawlerDefinition {
//!     name: "logs".into(),
//!     location: "s3://lake/logs/".into(),
//!     database: "raw".into(),
//!     options: CrawlerOptions::default(),
//! };
//! service.create(def, false).await?;
//! let run = service.run("logs").await?;
//! println!("{} tables created, {} partitions added", run.tables_created, run.partitions_added);
//! # Ok(()) }
//! ```

mod crawl;
mod definition;
mod error;
mod infer;
mod layout;
mod names;
mod schedule;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use datafusion::execution::runtime_env::RuntimeEnv;
use quarry_files::normalize_location;
use quarry_metastore::{CrawlerRun, Metastore};

pub use crawl::{CRAWLER_PROPERTY, CrawlState};
pub use definition::{
    CrawlerDefinition, CrawlerOptions, DeleteBehavior, OPTION_NAMES, SchemaChange,
};
pub use error::{CrawlerError, Result};
pub use schedule::{MIN_INTERVAL, Schedule, spawn_scheduler};

/// A run's claim on its crawler older than this is from a process that stopped.
pub const CLAIM_STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// A crawler with what `SHOW CRAWLERS` tells about it.
#[derive(Debug, Clone)]
pub struct CrawlerInfo {
    pub definition: CrawlerDefinition,
    pub created_at: String,
    pub last_run: Option<CrawlerRun>,
    /// Next scheduled run (RFC 3339), for scheduled crawlers.
    pub next_run: Option<String>,
}

/// Creates, lists, drops and runs crawlers over one metastore and object store registry.
#[derive(Debug)]
pub struct CrawlerService {
    metastore: Metastore,
    runtime: Arc<RuntimeEnv>,
    warehouse: PathBuf,
    running: Mutex<HashSet<String>>,
}

/// Removes a crawler from the running set when its run ends, however it ends.
struct RunningGuard<'a> {
    running: &'a Mutex<HashSet<String>>,
    name: String,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.running
            .lock()
            .expect("running crawlers")
            .remove(&self.name);
    }
}

fn timestamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl CrawlerService {
    /// `warehouse` is where databases the crawler creates are placed (`<warehouse>/<db>.db`).
    pub fn new(metastore: Metastore, runtime: Arc<RuntimeEnv>, warehouse: PathBuf) -> Self {
        Self {
            metastore,
            runtime,
            warehouse,
            running: Mutex::default(),
        }
    }

    /// Stores a crawler. The location is normalized (`/data/x` becomes `file:///data/x/`)
    /// and the options checked. With `replace`, an existing crawler of that name gets the
    /// new definition; otherwise an existing one is an error.
    pub async fn create(&self, mut def: CrawlerDefinition, replace: bool) -> Result<()> {
        def.name = def.name.to_lowercase();
        def.database = def.database.to_lowercase();
        def.location = normalize_location(&def.location)?;
        def.options.validate(&def.name)?;
        let json = serde_json::to_string(&def).expect("definitions serialize");
        if !self
            .metastore
            .put_crawler(&def.name, &json, replace)
            .await?
        {
            return Err(CrawlerError::Exists(def.name));
        }
        Ok(())
    }

    /// One crawler's definition.
    pub async fn get(&self, name: &str) -> Result<CrawlerDefinition> {
        let record = self
            .metastore
            .get_crawler(name)
            .await?
            .ok_or_else(|| CrawlerError::NotFound(name.to_string()))?;
        parse_definition(&record.name, &record.definition)
    }

    /// Every crawler with its last run and next scheduled run.
    pub async fn list(&self) -> Result<Vec<CrawlerInfo>> {
        let runs = self.metastore.list_crawler_runs().await?;
        let now = Utc::now();
        let mut out = Vec::new();
        for record in self.metastore.list_crawlers().await? {
            let definition = parse_definition(&record.name, &record.definition)?;
            let last_run = runs
                .iter()
                .rev()
                .find(|r| r.crawler == record.name)
                .cloned();
            let next_run = definition
                .options
                .schedule
                .as_deref()
                .and_then(|s| Schedule::parse(s).ok())
                .and_then(|s| s.next(now))
                .map(timestamp);
            out.push(CrawlerInfo {
                definition,
                created_at: record.created_at,
                last_run,
                next_run,
            });
        }
        Ok(out)
    }

    /// Drops a crawler; its tables and run history stay. False when it did not exist.
    pub async fn remove(&self, name: &str) -> Result<bool> {
        Ok(self.metastore.drop_crawler(name).await?)
    }

    /// Every recorded run, oldest first.
    pub async fn runs(&self) -> Result<Vec<CrawlerRun>> {
        Ok(self.metastore.list_crawler_runs().await?)
    }

    /// Runs a crawler now and returns its run record (also stored). A run that fails is
    /// recorded as `FAILED` with the reason and returned, not an error: only a crawler that
    /// does not exist or is already running (in this or another process) is.
    pub async fn run(&self, name: &str) -> Result<CrawlerRun> {
        let record = self
            .metastore
            .get_crawler(name)
            .await?
            .ok_or_else(|| CrawlerError::NotFound(name.to_string()))?;
        let def = parse_definition(&record.name, &record.definition)?;
        if !self
            .running
            .lock()
            .expect("running crawlers")
            .insert(def.name.clone())
        {
            return Err(CrawlerError::AlreadyRunning(def.name));
        }
        let _guard = RunningGuard {
            running: &self.running,
            name: def.name.clone(),
        };
        let stale_before = timestamp(
            Utc::now() - chrono::Duration::from_std(CLAIM_STALE_AFTER).expect("a small duration"),
        );
        if !self
            .metastore
            .claim_crawler(&def.name, &stale_before)
            .await?
        {
            return Err(CrawlerError::AlreadyRunning(def.name));
        }
        let outcome = self.run_claimed(&def, record.state.as_deref()).await;
        // A claim left behind (the metastore failing here) expires after CLAIM_STALE_AFTER.
        self.metastore.release_crawler(&def.name).await?;
        outcome
    }

    async fn run_claimed(
        &self,
        def: &CrawlerDefinition,
        state: Option<&str>,
    ) -> Result<CrawlerRun> {
        let started = Utc::now();
        let mut run = CrawlerRun {
            crawler: def.name.clone(),
            run_id: started.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
            started_at: timestamp(started),
            status: "RUNNING".into(),
            ..Default::default()
        };
        self.metastore.record_crawler_run(&run).await?;
        // The state is a cache: if it is unreadable, the run just reads everything.
        let previous: CrawlState = state
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let warehouse = crawl::warehouse_url(&self.warehouse)?;
        let mut crawl = crawl::Crawl::new(def, &self.metastore, &self.runtime, warehouse, &mut run);
        let outcome = crawl.execute(previous).await;
        crawl.finish_record();
        match outcome {
            Ok(state) => {
                let json = serde_json::to_string(&state).expect("state serializes");
                self.metastore.set_crawler_state(&def.name, &json).await?;
                run.status = if run.errors.is_empty() {
                    "SUCCEEDED"
                } else {
                    "SUCCEEDED_WITH_ERRORS"
                }
                .into();
            }
            Err(e) => {
                run.status = "FAILED".into();
                run.errors = if run.errors.is_empty() {
                    e.to_string()
                } else {
                    format!("{e}\n{}", run.errors)
                };
            }
        }
        run.finished_at = Some(timestamp(Utc::now()));
        self.metastore.record_crawler_run(&run).await?;
        Ok(run)
    }

    /// Runs every scheduled crawler that is due at `now`, one after the other.
    pub async fn run_due(&self, now: DateTime<Utc>) -> Result<Vec<CrawlerRun>> {
        let runs = self.metastore.list_crawler_runs().await?;
        let mut done = Vec::new();
        for record in self.metastore.list_crawlers().await? {
            let Ok(def) = parse_definition(&record.name, &record.definition) else {
                continue;
            };
            let Some(schedule) = def
                .options
                .schedule
                .as_deref()
                .and_then(|s| Schedule::parse(s).ok())
            else {
                continue;
            };
            let since = runs
                .iter()
                .filter(|r| r.crawler == def.name)
                .filter_map(|r| parse_time(&r.started_at))
                .max()
                .or_else(|| parse_time(&record.created_at))
                .unwrap_or(now);
            if schedule.is_due(since, now) {
                match self.run(&def.name).await {
                    Ok(run) => done.push(run),
                    Err(CrawlerError::AlreadyRunning(_)) => {}
                    Err(e) => tracing::warn!(crawler = %def.name, error = %e, "scheduled run"),
                }
            }
        }
        Ok(done)
    }
}

fn parse_definition(name: &str, json: &str) -> Result<CrawlerDefinition> {
    serde_json::from_str(json).map_err(|source| CrawlerError::CorruptDefinition {
        crawler: name.to_string(),
        source,
    })
}
