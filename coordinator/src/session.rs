//! [`Session`]: one user's connection: current database, settings, and statement execution.

use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{
    DdlStatement, DmlStatement, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, WriteOp, cast,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::StreamExt;

use crate::cluster::Cluster;
use crate::engine::Engine;
use crate::front::{self, ObjectName};
use crate::origins::{self, ColumnDescription};
use crate::system::{QueryRecord, QueryState};
use crate::temp::{self, TempTables};
use crate::{CoordinatorError, RemoteFailure, Result, ddl};

/// What a statement produced.
pub enum Output {
    /// Rows, streamed: dropping the stream cancels the query.
    Rows(SendableRecordBatchStream),
    /// A command without rows; the text is its PostgreSQL-style command tag.
    Done(String),
}

impl Output {
    /// Rows from string columns, for SHOW and DESCRIBE results.
    pub fn text_rows(columns: &[&str], rows: Vec<Vec<String>>) -> Result<Output> {
        let schema = text_schema(columns);
        let arrays = (0..columns.len())
            .map(|i| {
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r[i].as_str()),
                )) as Arc<dyn datafusion::arrow::array::Array>
            })
            .collect();
        let batch = RecordBatch::try_new(Arc::clone(&schema), arrays)
            .map_err(|e| CoordinatorError::DataFusion(e.into()))?;
        Ok(Output::Rows(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(vec![Ok(batch)]),
        ))))
    }
}

/// The schema of [`Output::text_rows`]: every column is text.
fn text_schema(columns: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// A user's session. Settings, the current database and prepared state belong to it alone.
pub struct Session {
    engine: Engine,
    ctx: SessionContext,
    /// Client settings outside DataFusion's namespaces (`SET application_name = ...`).
    variables: Settings,
    user: std::sync::Mutex<String>,
    /// May manage users (see [`crate::users`]).
    admin: std::sync::atomic::AtomicBool,
    /// Fires when the client asks to cancel the next statement.
    cancel: std::sync::Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
    /// This session's temporary tables (its catalog list shows them as `pg_temp`).
    temp: TempTables,
}

impl Session {
    /// A session of user `quarry`, an administrator (as a trusted connection is), with
    /// `temp` for its temporary tables.
    pub(crate) fn new(engine: Engine, ctx: SessionContext, temp: TempTables) -> Self {
        let variables = Settings::default();
        ctx.register_udf(crate::pg_functions::current_setting(Arc::clone(&variables)));
        let session = Self {
            engine,
            ctx,
            variables,
            user: std::sync::Mutex::new(String::new()),
            admin: std::sync::atomic::AtomicBool::new(true),
            cancel: Default::default(),
            temp,
        };
        session.set_user("quarry");
        session
    }

    /// Drops temporary table `name` if this session has one; false otherwise.
    pub(crate) fn drop_temp_table(&self, name: &str) -> Result<bool> {
        self.temp.drop_table(name)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// DataFusion's context of this session.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Sets a client setting (`SET name = value` outside DataFusion's namespaces).
    pub fn set_variable(&self, name: &str, value: &str) {
        self.variables
            .lock()
            .expect("session variables")
            .insert(name.to_string(), value.to_string());
    }

    /// A client setting: one set in this session, else the value PostgreSQL clients expect.
    pub fn variable(&self, name: &str) -> Option<String> {
        setting(&self.variables, name, &self.current_database())
    }

    /// The current database (`USE db` changes it).
    pub fn current_database(&self) -> String {
        self.ctx
            .state()
            .config()
            .options()
            .catalog
            .default_schema
            .clone()
    }

    pub(crate) fn set_current_database(&self, name: &str) {
        self.ctx
            .state_ref()
            .write()
            .config_mut()
            .options_mut()
            .catalog
            .default_schema = name.to_string();
    }

    /// Resolves `t`, `db.t` or `quarry.db.t` to (database, table).
    pub(crate) fn resolve(&self, name: &ObjectName) -> Result<(String, String)> {
        if let Some(catalog) = &name.catalog
            && catalog != crate::catalog::QUARRY_CATALOG
        {
            return Err(CoordinatorError::CatalogNotFound(catalog.clone()));
        }
        let database = name
            .database
            .clone()
            .unwrap_or_else(|| self.current_database());
        Ok((database, name.name.clone()))
    }

    /// The user this session runs as (the connection's user name).
    pub fn user(&self) -> String {
        self.user.lock().expect("session user").clone()
    }

    /// Sets the user; `current_user` and `session_user` report it.
    pub fn set_user(&self, user: &str) {
        *self.user.lock().expect("session user") = user.to_string();
        self.ctx.register_udf(session_user_udf(user));
    }

    /// Whether this session may create, alter and drop users.
    pub fn is_admin(&self) -> bool {
        self.admin.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_admin(&self, admin: bool) {
        self.admin
            .store(admin, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs one statement (no trailing `;` needed). Quarry's own statements are executed
    /// here; everything else is planned and run by DataFusion (or, in distributed mode,
    /// by the workers).
    pub async fn execute(&self, sql: &str) -> Result<Output> {
        self.tracked(sql, async {
            match self.prepare(sql).await? {
                Prepared::Quarry { statement, .. } => ddl::execute(self, statement).await,
                Prepared::Plan { plan, .. } => self.run_plan(plan).await,
            }
        })
        .await
    }

    /// Runs `work`, the statement `sql`, under the session's `statement_timeout` (which
    /// also bounds reading its rows), recorded in `system.runtime.queries`.
    async fn tracked(
        &self,
        sql: &str,
        work: impl std::future::Future<Output = Result<Output>>,
    ) -> Result<Output> {
        self.tracked_with(sql, work, true).await
    }

    /// [`Session::tracked`], with `statement_timeout` applied or not (a cursor's rows are
    /// read by later statements, each under its own timeout: [`Session::bounded`]).
    async fn tracked_with(
        &self,
        sql: &str,
        work: impl std::future::Future<Output = Result<Output>>,
        timed: bool,
    ) -> Result<Output> {
        let deadline = match timed {
            true => self
                .statement_timeout()?
                .map(|timeout| tokio::time::Instant::now() + timeout),
            false => None,
        };
        let record = self.start_record(sql);
        let cancel = self.cancel.lock().expect("cancel signal").take();
        let mut stop = Stop::new(deadline, cancel);
        let mut work = std::pin::pin!(work);
        let result = std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(reason) = stop.poll_stop(cx) {
                return std::task::Poll::Ready(Err(reason));
            }
            work.as_mut().poll(cx).map(Ok)
        })
        .await;
        match result {
            Ok(result) => finish_record(record, self.engine.cluster(), stop, result),
            Err(reason) => {
                record.finish(QueryState::Cancelled);
                // Stopped before its rows were handed out: its jobs may already run on
                // the workers (a remote statement, say), so they are cancelled there too.
                cancel_jobs(self.engine.cluster().cloned(), &record);
                Err(CoordinatorError::Cancelled(reason.into()))
            }
        }
    }

    /// Makes a cancel request able to stop the next statement: when `signal` fires, the
    /// statement (and, on a cluster, its tasks) stops with "canceling statement due to
    /// user request".
    pub fn arm_cancel(&self, signal: futures::channel::oneshot::Receiver<()>) {
        *self.cancel.lock().expect("cancel signal") = Some(signal);
    }

    /// `statement_timeout` of this session; `None` when unset or 0.
    pub fn statement_timeout(&self) -> Result<Option<std::time::Duration>> {
        match self.variable("statement_timeout") {
            Some(value) => parse_timeout(&value),
            None => Ok(None),
        }
    }

    /// Records a statement in `system.runtime.queries`; in distributed mode its id also
    /// names the scheduler's job, which `system.runtime.tasks` shows.
    fn start_record(&self, sql: &str) -> Arc<QueryRecord> {
        let record = self
            .engine
            .runtime_state()
            .start_query(&self.user(), &front::redact_passwords(sql));
        if self.engine.cluster().is_some() {
            let state = self.ctx.state_ref();
            let mut state = state.write();
            if let Err(e) = state
                .config_mut()
                .options_mut()
                .set("ballista.job.name", &record.id)
            {
                tracing::debug!(error = %e, "cannot name the job");
            }
        }
        record
    }

    /// Parses and plans a statement without running it (the extended protocol's Parse).
    pub async fn prepare(&self, sql: &str) -> Result<Prepared> {
        self.engine.catalog().refresh().await?;
        if let Some(statement) = front::parse(sql)? {
            return Ok(Prepared::Quarry {
                sql: sql.to_string(),
                statement,
            });
        }
        let state = self.ctx.state();
        let dialect = state.config().options().sql_parser.dialect;
        let mut statement = state.sql_to_statement(&postgres_compatible(sql), &dialect)?;
        self.temp.qualify(&mut statement)?;
        let plan = state.statement_to_plan(statement).await?;
        if let LogicalPlan::Ddl(ddl) = &plan
            && !matches!(ddl, DdlStatement::CreateMemoryTable(create) if temp::is_temp(create))
        {
            return Err(CoordinatorError::Unsupported(format!(
                "{} is not supported here; Quarry's DDL is Hive's (CREATE EXTERNAL TABLE ... LOCATION)",
                ddl_name(ddl)
            )));
        }
        let columns = self.describe_columns(&plan);
        Ok(Prepared::Plan {
            sql: sql.to_string(),
            plan,
            columns,
        })
    }

    /// Runs Quarry's own statement that [`Session::prepare`] returned (`sql` is its text).
    pub async fn execute_quarry(&self, sql: &str, statement: front::Statement) -> Result<Output> {
        self.tracked(sql, ddl::execute(self, statement)).await
    }

    /// Runs a plan from [`Session::prepare`] (with its parameters already bound; `sql` is
    /// its text).
    pub async fn execute_plan(&self, sql: &str, plan: LogicalPlan) -> Result<Output> {
        self.tracked(sql, self.run_plan(plan)).await
    }

    /// Runs a plan whose rows a cursor reads over later statements: recorded like any
    /// statement, but `statement_timeout` does not count from here; each read is bounded
    /// on its own with [`Session::bounded`].
    pub async fn open_cursor(&self, sql: &str, plan: LogicalPlan) -> Result<Output> {
        self.tracked_with(sql, self.run_plan(plan), false).await
    }

    /// `stream`, stopped with PostgreSQL's errors by this session's `statement_timeout`
    /// (counted from now) and by the cancel request armed for the current statement.
    pub fn bounded(&self, stream: SendableRecordBatchStream) -> Result<SendableRecordBatchStream> {
        let deadline = self
            .statement_timeout()?
            .map(|timeout| tokio::time::Instant::now() + timeout);
        let cancel = self.cancel.lock().expect("cancel signal").take();
        Ok(Box::pin(BoundedStream {
            inner: stream,
            stop: Stop::new(deadline, cancel),
            stopped: false,
        }))
    }

    async fn run_plan(&self, plan: LogicalPlan) -> Result<Output> {
        if let LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(create)) = &plan {
            return self.temp.create(&self.ctx, create).await;
        }
        if let LogicalPlan::Dml(dml) = &plan
            && is_insert(&plan)
        {
            return self.insert(dml).await;
        }
        let tag = command_tag(&plan);
        let columns = self.describe_columns(&plan);
        let df = self.ctx.execute_logical_plan(plan.clone()).await?;
        match tag {
            Some(tag) => {
                df.collect().await?;
                Ok(Output::Done(tag))
            }
            None => {
                let stream = self.retried_once(plan, df.execute_stream().await?)?;
                Ok(Output::Rows(origins::with_stream_descriptions(
                    stream, &columns,
                )))
            }
        }
    }

    /// Runs an INSERT (temporary tables take them) and answers PostgreSQL's `INSERT 0 n`.
    /// Its rows are cast to the table's exact column types first: a memory table accepts
    /// rows of merely equivalent types (Utf8 for Utf8View) and then cannot be read back.
    async fn insert(&self, dml: &DmlStatement) -> Result<Output> {
        let table = dml.target.schema();
        let input = dml.input.as_ref();
        if input.schema().fields().len() != table.fields().len() {
            return Err(CoordinatorError::Invalid(format!(
                "INSERT into {} has {} columns for the table's {}",
                dml.table_name,
                input.schema().fields().len(),
                table.fields().len()
            )));
        }
        let columns = input
            .schema()
            .columns()
            .into_iter()
            .zip(table.fields())
            .map(|(column, target)| {
                let name = column.name.clone();
                let expr = Expr::Column(column);
                if expr.get_type(input.schema())? == *target.data_type() {
                    Ok(expr)
                } else {
                    Ok(cast(expr, target.data_type().clone()).alias(name))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let input = LogicalPlanBuilder::from(input.clone())
            .project(columns)?
            .build()?;
        let plan = LogicalPlan::Dml(DmlStatement::new(
            dml.table_name.clone(),
            Arc::clone(&dml.target),
            dml.op.clone(),
            Arc::new(input),
        ));
        let batches = self.ctx.execute_logical_plan(plan).await?.collect().await?;
        let rows: u64 = batches
            .iter()
            .filter_map(|b| b.column(0).as_primitive_opt::<UInt64Type>())
            .flat_map(|counts| counts.iter().flatten())
            .sum();
        Ok(Output::Done(format!("INSERT 0 {rows}")))
    }

    /// `stream`, or, when it is a distributed query that failed before its first row in a
    /// way another try can avoid, the query run once more:
    /// * a hash join ran out of a worker's memory: again with sort-merge joins. Clusters
    ///   prefer hash joins (several times faster on TPC-H), which hold their build side in
    ///   memory; sort-merge joins spill.
    /// * its result could not be fetched from a worker that died after finishing its part
    ///   (the scheduler recovers lost shuffle data between stages, not the final result
    ///   the coordinator fetches): again, on the workers left.
    ///
    /// A distributed result arrives only once its job is done, so its first item tells,
    /// and nothing was sent yet. The retry happens as the stream is read, under the
    /// statement's timeout and cancellation like the first try.
    fn retried_once(
        &self,
        plan: LogicalPlan,
        mut stream: SendableRecordBatchStream,
    ) -> Result<SendableRecordBatchStream> {
        let mut state = self.ctx.state();
        if self.engine.cluster().is_none() || !crate::cluster::runs_on_cluster(&plan)? {
            return Ok(stream);
        }
        let hash_joins = state.config().options().optimizer.prefer_hash_join;
        let schema = stream.schema();
        let tries = async move {
            let first = stream.next().await;
            // Sort-merge joins only help where the query had hash joins.
            let retry = match &first {
                Some(Err(error)) => Retry::after(error)
                    .filter(|r| hash_joins || !matches!(r, Retry::SortMergeJoins)),
                _ => None,
            };
            let Some(retry) = retry else {
                return futures::stream::iter(first).chain(stream).boxed();
            };
            let reason = first.and_then(Result::err).map(|e| e.to_string());
            match retry {
                Retry::SortMergeJoins => {
                    tracing::info!(
                        error = reason,
                        "a hash join ran out of memory on a worker; running the query again \
                         with sort-merge joins, which spill"
                    );
                    state.config_mut().options_mut().optimizer.prefer_hash_join = false;
                }
                Retry::Again => tracing::info!(
                    error = reason,
                    "a worker holding the result is gone; running the query again"
                ),
            }
            match DataFrame::new(state, plan).execute_stream().await {
                Ok(again) => again.boxed(),
                Err(e) => futures::stream::iter([Err(e)]).boxed(),
            }
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::once(tries).flatten(),
        )))
    }

    /// Which table column each output column of `plan` reads unchanged (RowDescription's
    /// table OID and column number), with names resolved as the session resolves them,
    /// and the names PostgreSQL gives its computed columns.
    fn describe_columns(&self, plan: &LogicalPlan) -> Vec<ColumnDescription> {
        let state = self.ctx.state_ref();
        let state = state.read();
        let catalog = &state.config().options().catalog;
        origins::describe_columns(plan, &catalog.default_catalog, &catalog.default_schema)
    }
}

/// How a distributed query that failed before its first row runs again.
enum Retry {
    /// A hash join's build side did not fit in a worker's memory.
    SortMergeJoins,
    /// The worker holding (part of) the result died after its tasks finished.
    Again,
}

impl Retry {
    fn after(error: &DataFusionError) -> Option<Retry> {
        let text = error.to_string();
        if RemoteFailure::parse(&text).is_some_and(|failure| {
            failure.kind == "ResourcesExhausted" && failure.message.contains("HashJoin")
        }) {
            Some(Retry::SortMergeJoins)
        } else if text.contains("Shuffle fetch partition error") {
            Some(Retry::Again)
        } else {
            None
        }
    }
}

/// A statement parsed and planned, not yet run.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// One of Quarry's statements (DDL, SHOW, ...): planned when run.
    Quarry {
        sql: String,
        statement: front::Statement,
    },
    /// A DataFusion plan, possibly with `$n` parameters, and what RowDescription says of
    /// its output columns.
    Plan {
        sql: String,
        plan: LogicalPlan,
        columns: Vec<ColumnDescription>,
    },
}

impl Prepared {
    /// The columns the statement returns, known before it runs (the extended protocol's
    /// Describe); `None` when it only reports a command tag.
    pub fn result_schema(&self) -> Option<SchemaRef> {
        match self {
            Prepared::Plan { plan, .. } if answers_with_tag(plan) => None,
            Prepared::Plan { plan, columns, .. } => {
                Some(origins::with_descriptions(plan.schema().inner(), columns))
            }
            Prepared::Quarry { statement, .. } => {
                let columns = statement.result_columns()?;
                let columns: Vec<&str> = columns.iter().map(String::as_str).collect();
                Some(text_schema(&columns))
            }
        }
    }
}

/// Ends a statement's record when it failed or returned no rows; otherwise its rows are
/// counted as they stream and the record ends with the stream.
fn finish_record(
    record: Arc<QueryRecord>,
    cluster: Option<&Cluster>,
    stop: Stop,
    result: Result<Output>,
) -> Result<Output> {
    match result {
        Err(e) => {
            record.finish(QueryState::Failed);
            Err(e)
        }
        Ok(Output::Done(tag)) => {
            record.finish(QueryState::Finished);
            Ok(Output::Done(tag))
        }
        Ok(Output::Rows(stream)) => Ok(Output::Rows(Box::pin(TrackedStream {
            inner: stream,
            record,
            cluster: cluster.cloned(),
            stop,
        }))),
    }
}

/// Counts a result's rows and bytes into its query record; dropped before its end, it
/// cancels the query's jobs on the cluster. Past the statement's deadline, or on the
/// client's cancel request, it ends with PostgreSQL's error for it.
struct TrackedStream {
    inner: SendableRecordBatchStream,
    record: Arc<QueryRecord>,
    cluster: Option<Cluster>,
    stop: Stop,
}

/// A stream read by one statement, which its deadline or cancel request ends with an
/// error (then nothing more).
struct BoundedStream {
    inner: SendableRecordBatchStream,
    stop: Stop,
    stopped: bool,
}

impl futures::Stream for BoundedStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if self.stopped {
            return std::task::Poll::Ready(None);
        }
        if let std::task::Poll::Ready(reason) = self.stop.poll_stop(cx) {
            self.stopped = true;
            let error = CoordinatorError::Cancelled(reason.into());
            return std::task::Poll::Ready(Some(Err(DataFusionError::External(Box::new(error)))));
        }
        self.inner.as_mut().poll_next(cx)
    }
}

impl datafusion::execution::RecordBatchStream for BoundedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

/// What can stop a running statement: its deadline (statement_timeout) and the client's
/// cancel request.
struct Stop {
    deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    cancel: Option<futures::channel::oneshot::Receiver<()>>,
}

impl Stop {
    fn new(
        deadline: Option<tokio::time::Instant>,
        cancel: Option<futures::channel::oneshot::Receiver<()>>,
    ) -> Self {
        Self {
            deadline: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
            cancel,
        }
    }

    /// Ready with PostgreSQL's message once the statement must stop.
    fn poll_stop(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<&'static str> {
        use std::task::Poll;
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.deadline = None;
            return Poll::Ready(STATEMENT_TIMEOUT);
        }
        if let Some(cancel) = self.cancel.as_mut() {
            match std::pin::Pin::new(cancel).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.cancel = None;
                    return Poll::Ready(USER_CANCEL);
                }
                // The sender is gone: no cancel request can come for this statement.
                Poll::Ready(Err(_)) => self.cancel = None,
                Poll::Pending => {}
            }
        }
        Poll::Pending
    }
}

impl TrackedStream {
    /// Ends the query as cancelled and stops its jobs on the cluster.
    fn cancel(&mut self) {
        if self.record.state() != QueryState::Running {
            return;
        }
        self.record.finish(QueryState::Cancelled);
        cancel_jobs(self.cluster.take(), &self.record);
    }
}

/// Cancels `record`'s jobs on `cluster` in the background (nothing without a cluster or
/// outside a runtime).
fn cancel_jobs(cluster: Option<Cluster>, record: &QueryRecord) {
    if let (Some(cluster), Ok(runtime)) = (cluster, tokio::runtime::Handle::try_current()) {
        let id = record.id.clone();
        runtime.spawn(async move { cluster.cancel_query(&id).await });
    }
}

impl futures::Stream for TrackedStream {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        if let std::task::Poll::Ready(reason) = self.stop.poll_stop(cx) {
            self.cancel();
            let error = CoordinatorError::Cancelled(reason.into());
            return std::task::Poll::Ready(Some(Err(DataFusionError::External(Box::new(error)))));
        }
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            std::task::Poll::Ready(Some(Ok(batch))) => self
                .record
                .add_output(batch.num_rows(), batch.get_array_memory_size()),
            std::task::Poll::Ready(Some(Err(_))) => self.record.finish(QueryState::Failed),
            std::task::Poll::Ready(None) => self.record.finish(QueryState::Finished),
            std::task::Poll::Pending => {}
        }
        polled
    }
}

impl datafusion::execution::RecordBatchStream for TrackedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

impl Drop for TrackedStream {
    /// A result dropped before its end was cancelled (no-op when it had ended).
    fn drop(&mut self) {
        self.cancel();
    }
}

/// One session's client settings (`SET application_name = ...`), shared with its
/// `current_setting()`.
pub(crate) type Settings = Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>;

/// A client setting: one set in the session, else the value PostgreSQL clients expect.
pub(crate) fn setting(settings: &Settings, name: &str, current_database: &str) -> Option<String> {
    if let Some(value) = settings.lock().expect("session variables").get(name) {
        return Some(value.clone());
    }
    let default = match name {
        "server_version" => crate::SERVER_VERSION,
        "server_version_num" => "150000",
        "server_encoding" | "client_encoding" => "UTF8",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "datestyle" => "ISO, MDY",
        "timezone" => "UTC",
        "transaction_isolation" => "read committed",
        "default_transaction_read_only" | "transaction_read_only" => "off",
        "search_path" => return Some(current_database.to_string()),
        "application_name" => "",
        "max_identifier_length" => "63",
        "default_table_access_method" => "heap",
        _ => return None,
    };
    Some(default.to_string())
}

/// `session_user` (and `current_user`, which pg_catalog's rewrite turns into it) as the
/// session's user.
fn session_user_udf(user: &str) -> datafusion::logical_expr::ScalarUDF {
    let user = user.to_string();
    datafusion::logical_expr::create_udf(
        "session_user",
        vec![],
        DataType::Utf8,
        datafusion::logical_expr::Volatility::Stable,
        Arc::new(move |_args: &[datafusion::logical_expr::ColumnarValue]| {
            Ok(datafusion::logical_expr::ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Utf8(Some(user.clone())),
            ))
        }),
    )
}

/// The statement rewritten for what PostgreSQL clients send (`'t'::regclass`,
/// `OPERATOR(pg_catalog.~)`, `= ANY(array)`, psql's catalog queries, ...); the statement
/// itself when the rewriter does not take it (DataFusion-only syntax).
fn postgres_compatible(sql: &str) -> String {
    let sql = crate::pg_rewrites::with_quarry_rewrites(sql);
    let parser = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
    match parser.parse(&sql) {
        Ok(statements) if statements.len() == 1 => statements[0].to_string(),
        _ => sql,
    }
}

/// Whether `plan` is an INSERT.
fn is_insert(plan: &LogicalPlan) -> bool {
    matches!(plan, LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)))
}

/// Whether `plan` answers with a command tag and no rows (what Describe reports as
/// NoData): `run_plan` runs these to the end itself.
fn answers_with_tag(plan: &LogicalPlan) -> bool {
    command_tag(plan).is_some()
        || is_insert(plan)
        || matches!(plan, LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(_)))
}

/// Statements that produce no rows, with their PostgreSQL command tags.
fn command_tag(plan: &LogicalPlan) -> Option<String> {
    match plan {
        LogicalPlan::Statement(datafusion::logical_expr::Statement::SetVariable(_)) => {
            Some("SET".into())
        }
        LogicalPlan::Statement(datafusion::logical_expr::Statement::ResetVariable(_)) => {
            Some("RESET".into())
        }
        LogicalPlan::Statement(datafusion::logical_expr::Statement::TransactionStart(_)) => {
            Some("BEGIN".into())
        }
        LogicalPlan::Statement(datafusion::logical_expr::Statement::TransactionEnd(_)) => {
            Some("COMMIT".into())
        }
        _ => None,
    }
}

fn ddl_name(ddl: &DdlStatement) -> &'static str {
    match ddl {
        DdlStatement::CreateExternalTable(_) => "DataFusion's CREATE EXTERNAL TABLE",
        DdlStatement::CreateMemoryTable(_) => "CREATE TABLE ... AS / in-memory tables",
        DdlStatement::CreateView(_) => "this form of CREATE VIEW",
        DdlStatement::CreateCatalogSchema(_) => "this form of CREATE SCHEMA",
        DdlStatement::CreateCatalog(_) => "CREATE DATABASE in DataFusion's sense",
        DdlStatement::CreateIndex(_) => "CREATE INDEX",
        DdlStatement::DropTable(_) => "this form of DROP TABLE",
        DdlStatement::DropView(_) => "this form of DROP VIEW",
        DdlStatement::DropCatalogSchema(_) => "this form of DROP SCHEMA",
        DdlStatement::CreateFunction(_) => "CREATE FUNCTION",
        DdlStatement::DropFunction(_) => "DROP FUNCTION",
    }
}

/// PostgreSQL's message for a statement that ran out of time.
const STATEMENT_TIMEOUT: &str = "canceling statement due to statement timeout";
/// PostgreSQL's message for a statement the client cancelled.
const USER_CANCEL: &str = "canceling statement due to user request";

/// A `statement_timeout` value as PostgreSQL takes it: milliseconds, or a number with a
/// unit (`ms`, `s`, `min`, `h`, `d`); 0 turns the timeout off.
pub(crate) fn parse_timeout(value: &str) -> Result<Option<std::time::Duration>> {
    let text = value.trim().trim_matches('\'').trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let invalid = || {
        CoordinatorError::Invalid(format!(
            "invalid value for parameter \"statement_timeout\": \"{value}\" \
             (milliseconds, or a number with ms, s, min, h or d)"
        ))
    };
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit.trim() {
        "" | "ms" => number,
        "s" => number * 1e3,
        "min" => number * 60e3,
        "h" => number * 3600e3,
        "d" => number * 86_400e3,
        _ => return Err(invalid()),
    };
    Ok((millis > 0.0).then(|| std::time::Duration::from_secs_f64(millis / 1e3)))
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;
    use std::time::Duration;

    #[test]
    fn statement_timeouts_read_as_postgresql_reads_them() {
        assert_eq!(
            parse_timeout("1500").unwrap(),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_timeout("'2s'").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_timeout("1min").unwrap(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_timeout("0").unwrap(), None);
        let error = parse_timeout("soon").unwrap_err().user_message();
        assert!(
            error.contains("statement_timeout") && error.contains("soon"),
            "{error}"
        );
    }
}
