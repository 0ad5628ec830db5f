//! [`Session`]: one user's connection: current database, settings, and statement execution.

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType as SqlDataType, Expr as SqlExpr, FunctionArg,
    FunctionArgExpr, FunctionArguments, GroupByExpr, SelectItem, SetExpr, Subscript, TableFactor,
    TableWithJoins, Value as SqlValue, visit_expressions, visit_expressions_mut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;

use crate::cluster::Cluster;
use crate::engine::Engine;
use crate::front::{self, ObjectName};
use crate::system::{QueryRecord, QueryState};
use crate::temp::{self, TempTables};
use crate::{CoordinatorError, Result, ddl};

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
        Ok(Prepared::Plan {
            sql: sql.to_string(),
            plan,
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
        let tag = command_tag(&plan);
        let df = self.ctx.execute_logical_plan(plan).await?;
        match tag {
            Some(tag) => {
                df.collect().await?;
                Ok(Output::Done(tag))
            }
            None => Ok(Output::Rows(df.execute_stream().await?)),
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
    /// A DataFusion plan, possibly with `$n` parameters.
    Plan { sql: String, plan: LogicalPlan },
}

impl Prepared {
    /// The columns the statement returns, known before it runs (the extended protocol's
    /// Describe); `None` when it only reports a command tag.
    pub fn result_schema(&self) -> Option<SchemaRef> {
        match self {
            Prepared::Plan { plan, .. } => Some(Arc::clone(plan.schema().inner())),
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
        if let (Some(cluster), Ok(runtime)) =
            (self.cluster.take(), tokio::runtime::Handle::try_current())
        {
            let id = self.record.id.clone();
            runtime.spawn(async move { cluster.cancel_query(&id).await });
        }
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
    let sql = with_quarry_rewrites(sql);
    let parser = datafusion_pg_catalog::sql::PostgresCompatibilityParser::new();
    match parser.parse(&sql) {
        Ok(statements) if statements.len() == 1 => statements[0].to_string(),
        _ => sql,
    }
}

/// Quarry's own rewrites of what clients send, applied before datafusion-pg-catalog's (which
/// would otherwise turn `'f'::regproc` into a lookup that cannot be compared with `typinput`).
fn with_quarry_rewrites(sql: &str) -> String {
    let Ok(mut statements) = SqlParser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return sql.to_string();
    };
    let [statement] = statements.as_mut_slice() else {
        return sql.to_string();
    };
    let catalog_query = sql.to_ascii_lowercase().contains("pg_catalog.");
    let mut changed = false;
    let _ = visit_expressions_mut(statement, |expr| {
        changed |= dot_access_to_subscript(expr);
        changed |= subquery_of_pg_sequence(expr);
        // Only where subqueries look rows up by OID (see the function).
        if catalog_query {
            changed |= aggregate_scalar_subquery(expr);
        }
        changed |= hoist_outer_conditions(expr);
        changed |= regproc_literal_as_text(expr);
        changed |= no_serial_sequence(expr);
        changed |= subscripts_as_series(expr);
        changed |= regtype_lookup(expr);
        ControlFlow::<()>::Continue(())
    });
    if changed {
        statement.to_string()
    } else {
        sql.to_string()
    }
}

/// A scalar subquery reading only `pg_sequence` (SQLAlchemy's identity options, correlated
/// in a way DataFusion cannot plan): Quarry has no sequences, pg_sequence is empty, so the
/// subquery is NULL. Aggregates over it are left alone (`count` of nothing is 0).
fn subquery_of_pg_sequence(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let [from] = select.from.as_slice() else {
        return false;
    };
    let TableFactor::Table { name, .. } = &from.relation else {
        return false;
    };
    let name = name.to_string().to_ascii_lowercase();
    let reads_sequences =
        from.joins.is_empty() && (name == "pg_sequence" || name == "pg_catalog.pg_sequence");
    let aggregates = select.projection.iter().any(|item| {
        matches!(item,
            SelectItem::UnnamedExpr(SqlExpr::Function(f)) | SelectItem::ExprWithAlias { expr: SqlExpr::Function(f), .. }
                if AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str()))
    });
    if !reads_sequences || aggregates || select.projection.len() != 1 {
        return false;
    }
    *expr = SqlExpr::value(SqlValue::Null);
    true
}

/// `(SELECT e FROM t WHERE outer.c AND t.k = outer.k)`, a scalar subquery with a condition
/// on the outer row only (SQLAlchemy's column defaults: `WHERE pg_attribute.atthasdef AND
/// ...`), which DataFusion cannot decorrelate, as `CASE WHEN outer.c THEN (SELECT e FROM t
/// WHERE t.k = outer.k) END`: the same value (NULL when the condition is not true).
/// A condition counts as the outer row's when every column in it is qualified by a name that
/// is not one of the subquery's tables.
fn hoist_outer_conditions(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let Some(selection) = select.selection.take() else {
        return false;
    };
    let inner = relation_names(&select.from);
    let (outer, kept): (Vec<SqlExpr>, Vec<SqlExpr>) = conjuncts(selection)
        .into_iter()
        .partition(|c| only_outer_columns(c, &inner));
    select.selection = kept.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    });
    let Some(condition) = outer.into_iter().reduce(|a, b| SqlExpr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    }) else {
        return false;
    };
    let case = format!("CASE WHEN {condition} THEN ({query}) END");
    match SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(&case)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(parsed) => {
            *expr = parsed;
            true
        }
        Err(_) => false,
    }
}

/// The names a query's FROM tables go by: aliases, full names and unqualified names.
fn relation_names(from: &[TableWithJoins]) -> Vec<String> {
    let mut names = Vec::new();
    let relations = from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)));
    for relation in relations {
        if let TableFactor::Table { name, alias, .. } = relation {
            match alias {
                Some(alias) => names.push(alias.name.value.to_ascii_lowercase()),
                None => {
                    names.push(name.to_string().to_ascii_lowercase());
                    if let Some(last) = name.0.last() {
                        names.push(last.to_string().to_ascii_lowercase());
                    }
                }
            }
        }
    }
    names
}

/// `a AND b AND c` as `[a, b, c]`.
fn conjuncts(expr: SqlExpr) -> Vec<SqlExpr> {
    match expr {
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            let mut all = conjuncts(*left);
            all.extend(conjuncts(*right));
            all
        }
        SqlExpr::Nested(inner)
            if matches!(
                inner.as_ref(),
                SqlExpr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(*inner)
        }
        other => vec![other],
    }
}

/// Whether every column `expr` uses is qualified by a name other than `inner`'s, and it uses
/// at least one (and no subquery).
fn only_outer_columns(expr: &SqlExpr, inner: &[String]) -> bool {
    let mut outer_columns = 0;
    let verdict = visit_expressions(expr, |e| match e {
        SqlExpr::Identifier(_)
        | SqlExpr::Subquery(_)
        | SqlExpr::Exists { .. }
        | SqlExpr::InSubquery { .. } => ControlFlow::Break(()),
        SqlExpr::CompoundIdentifier(parts) => {
            let qualifier = parts[..parts.len() - 1]
                .iter()
                .map(|p| p.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(".");
            if inner.contains(&qualifier) {
                ControlFlow::Break(())
            } else {
                outer_columns += 1;
                ControlFlow::Continue(())
            }
        }
        _ => ControlFlow::Continue(()),
    });
    verdict.is_continue() && outer_columns > 0
}

/// A correlated scalar subquery without aggregation, `(SELECT c.relkind = 'c' FROM
/// pg_catalog.pg_class c WHERE c.oid = t.typrelid)` (pgjdbc's `getTypeInfo`), which
/// DataFusion refuses ("must be aggregated"), as `(SELECT max(...) ...)`. Only in statements
/// over pg_catalog, where such subqueries look a row up by OID: at most one row matches, so
/// `max` of it is the row's value. (PostgreSQL would fail on two rows; this picks the larger.)
fn aggregate_scalar_subquery(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Subquery(query) = expr else {
        return false;
    };
    if query.limit_clause.is_some() || query.order_by.is_some() || query.fetch.is_some() {
        return false;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return false;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(keys, _) if keys.is_empty());
    if select.projection.len() != 1
        || select.selection.is_none()
        || select.distinct.is_some()
        || select.having.is_some()
        || grouped
    {
        return false;
    }
    let (SelectItem::UnnamedExpr(value) | SelectItem::ExprWithAlias { expr: value, .. }) =
        &mut select.projection[0]
    else {
        return false;
    };
    // An aggregate already returns one row.
    if let SqlExpr::Function(f) = value
        && AGGREGATES.contains(&f.name.to_string().to_ascii_lowercase().as_str())
    {
        return false;
    }
    let wrapped = format!("max({value})");
    if let Ok(parsed) = SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(&wrapped)
        .and_then(|mut parser| parser.parse_expr())
    {
        *value = parsed;
        return true;
    }
    false
}

/// Aggregate functions PostgreSQL clients use in catalog subqueries.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "array_agg",
    "string_agg",
    "bool_and",
    "bool_or",
    "every",
    "json_agg",
    "first_value",
];

/// `'pg_catalog.array_in'::regproc` (pgjdbc's type cache compares `typinput` with it): the
/// function's name as text, which is how pg_catalog's `regproc` columns hold it here.
fn regproc_literal_as_text(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Cast {
        expr: inner,
        data_type,
        ..
    } = expr
    else {
        return false;
    };
    if !data_type.to_string().eq_ignore_ascii_case("regproc") {
        return false;
    }
    let SqlExpr::Value(value) = inner.as_ref() else {
        return false;
    };
    let SqlValue::SingleQuotedString(name) = &value.value else {
        return false;
    };
    let name = name.strip_prefix("pg_catalog.").unwrap_or(name).to_string();
    *expr = SqlExpr::value(SqlValue::SingleQuotedString(name));
    true
}

/// `pg_get_serial_sequence(table, column)`: the sequence behind a serial column. Quarry has
/// no sequences, so it is NULL, PostgreSQL's answer for a column that is not serial. Written
/// as the NULL itself so that its arguments (SQLAlchemy's inspector passes
/// `attrelid::regclass::text`, a lookup DataFusion cannot run inside a correlated subquery)
/// are not planned.
fn no_serial_sequence(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Function(f) = expr else {
        return false;
    };
    let name = f.name.to_string().to_ascii_lowercase();
    if name != "pg_get_serial_sequence" && name != "pg_catalog.pg_get_serial_sequence" {
        return false;
    }
    *expr = SqlExpr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(SqlExpr::value(SqlValue::Null)),
        data_type: SqlDataType::Text,
        array: false,
        format: None,
    };
    true
}

/// `generate_subscripts(a, 1)`, the subscripts of a one-dimensional array as rows (SQLAlchemy
/// zips it with `unnest(a)` to number index keys), as `unnest(generate_series(1,
/// array_length(a, 1)))`: DataFusion has no generate_subscripts, and zips unnests alike.
fn subscripts_as_series(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Function(f) = expr else {
        return false;
    };
    let name = f.name.to_string().to_ascii_lowercase();
    if name != "generate_subscripts" && name != "pg_catalog.generate_subscripts" {
        return false;
    }
    let FunctionArguments::List(list) = &f.args else {
        return false;
    };
    let [
        FunctionArg::Unnamed(FunctionArgExpr::Expr(array)),
        FunctionArg::Unnamed(FunctionArgExpr::Expr(dim)),
    ] = list.args.as_slice()
    else {
        return false;
    };
    if dim.to_string() != "1" {
        return false;
    }
    let series = format!("unnest(generate_series(1, array_length({array}, 1)))");
    match SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(&series)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(parsed) => {
            *expr = parsed;
            true
        }
        Err(_) => false,
    }
}

/// `to_regtype(name)` (psycopg's `TypeInfo.fetch`): the OID of the type called `name`, or
/// NULL, as a lookup in pg_type by name; SQL's spellings of the built-in types are mapped to
/// their pg_type names, and a `pg_catalog.` prefix is dropped.
fn regtype_lookup(expr: &mut SqlExpr) -> bool {
    let SqlExpr::Function(f) = expr else {
        return false;
    };
    let name = f.name.to_string().to_ascii_lowercase();
    if name != "to_regtype" && name != "pg_catalog.to_regtype" {
        return false;
    }
    let FunctionArguments::List(list) = &f.args else {
        return false;
    };
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(type_name))] = list.args.as_slice() else {
        return false;
    };
    let aliases = [
        ("integer", "int4"),
        ("int", "int4"),
        ("smallint", "int2"),
        ("bigint", "int8"),
        ("real", "float4"),
        ("double precision", "float8"),
        ("boolean", "bool"),
        ("decimal", "numeric"),
        ("character varying", "varchar"),
        ("character", "bpchar"),
        ("timestamp without time zone", "timestamp"),
        ("timestamp with time zone", "timestamptz"),
        ("time without time zone", "time"),
        ("time with time zone", "timetz"),
    ]
    .iter()
    .map(|(alias, name)| format!("WHEN '{alias}' THEN '{name}'"))
    .collect::<Vec<_>>()
    .join(" ");
    let lookup = format!(
        "(SELECT max(t.oid) FROM pg_catalog.pg_type t WHERE t.typname = \
         CASE lower({type_name}) {aliases} \
         ELSE regexp_replace(lower({type_name}), '^pg_catalog\\.', '') END)"
    );
    match SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(&lookup)
        .and_then(|mut parser| parser.parse_expr())
    {
        Ok(parsed) => {
            *expr = parsed;
            true
        }
        Err(_) => false,
    }
}

/// `(expr).field`, PostgreSQL's field access on a composite value (pgjdbc's
/// `(information_schema._pg_expandarray(i.indkey)).n`), as `(expr)['field']`, the spelling
/// DataFusion plans.
fn dot_access_to_subscript(expr: &mut SqlExpr) -> bool {
    let SqlExpr::CompoundFieldAccess { root, access_chain } = expr else {
        return false;
    };
    if !matches!(root.as_ref(), SqlExpr::Nested(_)) {
        return false;
    }
    let mut changed = false;
    for access in access_chain.iter_mut() {
        if let AccessExpr::Dot(SqlExpr::Identifier(field)) = access {
            let name = SqlValue::SingleQuotedString(field.value.clone());
            *access = AccessExpr::Subscript(Subscript::Index {
                index: SqlExpr::value(name),
            });
            changed = true;
        }
    }
    changed
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
