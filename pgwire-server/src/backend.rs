//! One connection's protocol handlers, over one Quarry session.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::{Sink, StreamExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::{
    DescribePortalResponse, DescribeResponse, DescribeStatementResponse, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, DEFAULT_NAME, PgWireServerHandlers, Type};
use pgwire::api::{ConnectionGuard, ConnectionHandle, ConnectionManager};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::{
    Describe, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::TransactionStatus;
use quarry_coordinator::front::ROLLBACK_TO_SAVEPOINT;
use quarry_coordinator::split::split_statements;
use quarry_coordinator::{CoordinatorError, Output, Prepared, Session};

use crate::copy::{self, CopyOut};
use crate::cursors::{CursorStatement, Cursors};
use crate::errors::{cursor_error, user_error};
use crate::fields::pg_fields;
use crate::rows::encode_rows;
use crate::startup::{QuarryStartup, StartupPolicy};
use crate::wire::{self, WireStatement};

/// The handlers pgwire asks for, for one connection.
pub(crate) struct ConnectionHandlers {
    backend: Arc<QuarryBackend>,
    startup: Arc<QuarryStartup>,
    cancel: Arc<DefaultCancelHandler>,
}

/// This connection's entry in the server's cancel registry, set at startup; dropping it
/// (with the connection) unregisters it.
#[derive(Default)]
pub(crate) struct CancelSlot(
    pub(crate) std::sync::Mutex<Option<(Arc<ConnectionHandle>, ConnectionGuard)>>,
);

impl CancelSlot {
    /// Lets a cancel request for this connection stop the statement about to run.
    async fn arm(&self, session: &Session) {
        let handle = self
            .0
            .lock()
            .expect("cancel slot")
            .as_ref()
            .map(|(handle, _)| Arc::clone(handle));
        if let Some(handle) = handle {
            session.arm_cancel(handle.start_query().await);
        }
    }
}

impl ConnectionHandlers {
    pub(crate) fn new(
        session: Session,
        connections: Arc<ConnectionManager>,
        policy: Arc<StartupPolicy>,
    ) -> Self {
        let session = Arc::new(session);
        let slot = Arc::new(CancelSlot::default());
        let cursors = Arc::new(Cursors::default());
        Self {
            backend: Arc::new(QuarryBackend {
                session: Arc::clone(&session),
                parser: Arc::new(QuarryParser {
                    session: Arc::clone(&session),
                    cursors: Arc::clone(&cursors),
                }),
                cancel: Arc::clone(&slot),
                cursors,
            }),
            startup: Arc::new(QuarryStartup::new(
                session,
                Arc::clone(&connections),
                slot,
                policy,
            )),
            cancel: Arc::new(DefaultCancelHandler::new(connections)),
        }
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.backend)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.backend)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.cancel)
    }
}

pub(crate) struct QuarryBackend {
    session: Arc<Session>,
    parser: Arc<QuarryParser>,
    cancel: Arc<CancelSlot>,
    /// This connection's SQL cursors.
    cursors: Arc<Cursors>,
}

pub(crate) struct QuarryParser {
    session: Arc<Session>,
    cursors: Arc<Cursors>,
}

/// Parameter types of a plan in `$1, $2, ...` order.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| user_error(e.into()))?;
    let mut numbered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| name.trim_start_matches('$').parse().ok().map(|n| (n, t)))
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    Ok(numbered.into_iter().map(|(_, t)| t).collect())
}

fn pg_error(err: impl std::fmt::Display) -> PgWireError {
    PgWireError::ApiError(err.to_string().into())
}

/// Streams record batches as rows; nothing is materialized beyond a batch.
fn query_response(
    stream: SendableRecordBatchStream,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let fields: Arc<Vec<FieldInfo>> = Arc::new(pg_fields(stream.schema().as_ref(), format)?);
    let row_fields = Arc::clone(&fields);
    let rows = stream
        .map(
            move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send + Sync> {
                match batch {
                    Ok(batch) => Box::new(encode_rows(Arc::clone(&row_fields), batch)),
                    Err(e) => Box::new(std::iter::once(Err(user_error(CoordinatorError::from(e))))),
                }
            },
        )
        .flat_map(futures::stream::iter);
    Ok(QueryResponse::new(fields, rows))
}

/// `DEALLOCATE [PREPARE] name` gives `Some(Some(name))`; `DEALLOCATE ALL` gives `Some(None)`
/// (statements then stay until the connection ends: pgwire's store cannot list them).
fn deallocated(statement: &str) -> Option<Option<String>> {
    let mut words = statement.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("DEALLOCATE") {
        return None;
    }
    let mut name = words.next()?;
    if name.eq_ignore_ascii_case("PREPARE") {
        name = words.next()?;
    }
    if name.eq_ignore_ascii_case("ALL") {
        return Some(None);
    }
    Some(Some(name.trim_matches('"').to_string()))
}

fn response(output: Output, format: &Format) -> PgWireResult<Response> {
    Ok(match output {
        Output::Rows(stream) => Response::Query(query_response(stream, format)?),
        Output::Done(tag) => match tag.as_str() {
            "BEGIN" => Response::TransactionStart(Tag::new(&tag)),
            "COMMIT" | "ROLLBACK" => Response::TransactionEnd(Tag::new(&tag)),
            ROLLBACK_TO_SAVEPOINT => Response::Execution(Tag::new("ROLLBACK")),
            _ => Response::Execution(Tag::new(&tag)),
        },
    })
}

#[async_trait]
impl SimpleQueryHandler for QuarryBackend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut responses = Vec::new();
        let mut in_transaction = client.transaction_status() != TransactionStatus::Idle;
        for statement in split_statements(query) {
            if let Some(name) = deallocated(&statement) {
                // Prepared statements live in pgwire's per-connection store.
                if let Some(name) = name {
                    client.portal_store().rm_statement(&name);
                }
                responses.push(Response::Execution(Tag::new("DEALLOCATE")));
                continue;
            }
            let result = if wire::is_wire_statement(&statement) {
                match wire::prepare(&self.session, &statement).await {
                    Ok(prepared) => match self
                        .run_wire(&prepared, None, &Format::UnifiedText, in_transaction)
                        .await
                    {
                        // pgwire sends the responses queued here after the last statement.
                        Ok(answer) => answer.respond(client, responses.is_empty()).await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(user_error(e)),
                }
            } else {
                self.cancel.arm(&self.session).await;
                match self.session.execute(&statement).await {
                    Ok(output) => response(output, &Format::UnifiedText),
                    Err(e) => Err(user_error(e)),
                }
            };
            match result {
                Ok(response) => {
                    in_transaction = self.track_transaction(&response, in_transaction);
                    responses.push(response);
                }
                Err(PgWireError::UserError(info)) => {
                    // Like PostgreSQL: the statements before still count, the rest are skipped.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl QueryParser for QuarryParser {
    type Statement = WireStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<WireStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        wire::prepare(&self.session, sql)
            .await
            .map(Some)
            .map_err(user_error)
    }

    fn get_parameter_types(&self, statement: &WireStatement) -> PgWireResult<Vec<Type>> {
        let (WireStatement::Session(Prepared::Plan { plan, .. })
        | WireStatement::Copy {
            query: Prepared::Plan { plan, .. },
            ..
        }
        | WireStatement::Declare {
            query: Prepared::Plan { plan, .. },
            ..
        }) = statement
        else {
            return Ok(vec![]);
        };
        parameter_types(plan)?
            .iter()
            .map(|t| match t {
                Some(t) => into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        statement: &WireStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = format.unwrap_or(&Format::UnifiedText);
        match statement {
            WireStatement::Session(prepared) => match prepared.result_schema() {
                Some(schema) => pg_fields(&schema, format),
                None => Ok(vec![]),
            },
            // The cursor's columns, when it is open (else Execute reports it missing).
            WireStatement::Cursor(CursorStatement::Fetch {
                name,
                moving: false,
                ..
            }) => match self.cursors.get(name) {
                Some(cursor) => pg_fields(&cursor.schema, format),
                None => Ok(vec![]),
            },
            // COPY answers with CopyOutResponse, the others with a command tag.
            WireStatement::Copy { .. }
            | WireStatement::Declare { .. }
            | WireStatement::Cursor(_) => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for QuarryBackend {
    type Statement = WireStatement;
    type QueryParser = QuarryParser;

    fn query_parser(&self) -> Arc<QuarryParser> {
        Arc::clone(&self.parser)
    }

    /// Like pgwire's, and a portal named like an open cursor describes that cursor: in
    /// PostgreSQL a cursor is a portal, and psycopg's server-side cursors describe it so.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = WireStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && client.portal_store().get_portal(name).is_none()
            && let Some(cursor) = self.cursors.get(name)
        {
            let format = if cursor.binary {
                Format::UnifiedBinary
            } else {
                Format::UnifiedText
            };
            let fields = pg_fields(&cursor.schema, &format)?;
            return send_describe_response(client, &DescribePortalResponse::new(fields)).await;
        }
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT
            && let Some(Entry::Value(statement)) = client.portal_store().get_statement(name)
        {
            let described = self.do_describe_statement(client, &statement).await?;
            return send_describe_response(client, &StatementDescription(described)).await;
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<WireStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = WireStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let in_transaction = client.transaction_status() != TransactionStatus::Idle;
        let answer = self
            .run_wire(
                &portal.statement.statement,
                Some(portal),
                &portal.result_column_format,
                in_transaction,
            )
            .await?;
        // An Execute answers one statement: nothing is queued before a copy sent here.
        let response = answer.respond(client, true).await?;
        self.track_transaction(&response, in_transaction);
        Ok(response)
    }
}

impl QuarryBackend {
    /// Runs a prepared session statement, binding the portal's parameters to a plan;
    /// `cursor` when its rows are for a cursor (read by later statements).
    async fn run(
        &self,
        prepared: &Prepared,
        portal: Option<&Portal<WireStatement>>,
        cursor: bool,
    ) -> PgWireResult<Output> {
        self.cancel.arm(&self.session).await;
        let output = match prepared {
            Prepared::Quarry { sql, statement } => {
                self.session.execute_quarry(sql, statement.clone()).await
            }
            Prepared::Plan { sql, plan, .. } => {
                let plan = match portal {
                    Some(portal) => {
                        let types = parameter_types(plan)?;
                        let type_refs: Vec<Option<&DataType>> =
                            types.iter().map(Option::as_ref).collect();
                        let params = deserialize_parameters(portal, &type_refs)?;
                        plan.clone().with_param_values(params).map_err(pg_error)?
                    }
                    None => plan.clone(),
                };
                if cursor {
                    self.session.open_cursor(sql, plan).await
                } else {
                    self.session.execute_plan(sql, plan).await
                }
            }
        };
        output.map_err(user_error)
    }

    /// Runs a statement of either protocol: the session's, COPY or a cursor statement.
    async fn run_wire(
        &self,
        statement: &WireStatement,
        portal: Option<&Portal<WireStatement>>,
        format: &Format,
        in_transaction: bool,
    ) -> PgWireResult<Answer> {
        let response = match statement {
            WireStatement::Session(prepared) => {
                response(self.run(prepared, portal, false).await?, format)
            }
            WireStatement::Copy { query, options } => {
                let stream = rows_of(self.run(query, portal, false).await?, "COPY")?;
                return Ok(Answer::Copy(copy::copy_out(stream, options.clone()).await?));
            }
            WireStatement::Declare {
                name,
                binary,
                hold,
                query,
            } => {
                if self.cursors.get(name).is_some() {
                    return Err(cursor_error(crate::cursors::CursorError::Duplicate(
                        name.clone(),
                    )));
                }
                let stream = rows_of(self.run(query, portal, true).await?, "DECLARE CURSOR")?;
                self.cursors
                    .declare(name, stream, *binary, *hold, in_transaction)
                    .map_err(cursor_error)?;
                Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
            }
            WireStatement::Cursor(CursorStatement::Fetch {
                name,
                count,
                moving,
            }) => {
                let cursor = self.cursors.require(name).map_err(cursor_error)?;
                // Each FETCH has its own statement_timeout and can be cancelled.
                self.cancel.arm(&self.session).await;
                let mut rows = self
                    .session
                    .bounded(cursor.fetch(*count))
                    .map_err(user_error)?;
                if *moving {
                    let mut moved = 0;
                    while let Some(batch) = rows.next().await {
                        moved += batch
                            .map_err(|e| user_error(CoordinatorError::from(e)))?
                            .num_rows();
                    }
                    return Ok(Answer::Respond(Response::Execution(
                        Tag::new("MOVE").with_rows(moved),
                    )));
                }
                // A BINARY cursor sends binary rows in the simple protocol too.
                let format = match portal {
                    None if cursor.binary => &Format::UnifiedBinary,
                    _ => format,
                };
                let mut response = query_response(rows, format)?;
                response.set_command_tag("FETCH");
                Ok(Response::Query(response))
            }
            WireStatement::Cursor(CursorStatement::Close { name }) => {
                self.cursors.close(name.as_deref()).map_err(cursor_error)?;
                Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
            }
            WireStatement::Cursor(CursorStatement::Declare { .. }) => Err(user_error(
                CoordinatorError::Invalid("DECLARE was not planned".into()),
            )),
        };
        response.map(Answer::Respond)
    }

    /// Whether a transaction block is open after `response`; its end closes the cursors
    /// declared in it without HOLD.
    fn track_transaction(&self, response: &Response, in_transaction: bool) -> bool {
        match response {
            Response::TransactionStart(_) => true,
            Response::TransactionEnd(_) => {
                self.cursors.end_transaction();
                false
            }
            _ => in_transaction,
        }
    }
}

/// A statement's Describe as PostgreSQL answers it: its parameters, then NoData when it
/// returns no rows. pgwire sends an empty RowDescription for a statement that has
/// parameters but no result columns, and pgjdbc then refuses to run an INSERT as an update
/// ("A result was returned when none was expected").
struct StatementDescription(DescribeStatementResponse);

impl DescribeResponse for StatementDescription {
    fn parameters(&self) -> Option<&[Type]> {
        self.0.parameters()
    }

    fn fields(&self) -> &[FieldInfo] {
        self.0.fields()
    }

    fn no_data() -> Self {
        StatementDescription(DescribeStatementResponse::no_data())
    }

    fn is_no_data(&self) -> bool {
        self.0.fields().is_empty()
    }
}

/// A statement's answer.
enum Answer {
    Respond(Response),
    Copy(CopyOut),
}

impl Answer {
    /// The response for pgwire to send. A COPY is sent here when nothing is queued before
    /// it (`first`), so that its tag counts rows and an error ends it as PostgreSQL ends
    /// one; after other statements of one simple query, pgwire sends it (copy.rs).
    async fn respond<C>(self, client: &mut C, first: bool) -> PgWireResult<Response>
    where
        C: Sink<PgWireBackendMessage> + Unpin,
        PgWireError: From<C::Error>,
    {
        match self {
            Answer::Respond(response) => Ok(response),
            Answer::Copy(copy) if first => {
                let rows = copy.send(client).await?;
                Ok(Response::Execution(Tag::new("COPY").with_rows(rows)))
            }
            Answer::Copy(copy) => Ok(Response::CopyOut(copy.into_response())),
        }
    }
}

/// The rows a COPY or a cursor reads: its statement must return some.
fn rows_of(output: Output, what: &str) -> PgWireResult<SendableRecordBatchStream> {
    match output {
        Output::Rows(stream) => Ok(stream),
        Output::Done(tag) => Err(user_error(CoordinatorError::Invalid(format!(
            "{what} needs a query that returns rows, not {tag}"
        )))),
    }
}
