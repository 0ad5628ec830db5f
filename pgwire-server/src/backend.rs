//! One connection's protocol handlers, over one Quarry session.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::df::deserialize_parameters;
use arrow_pg::datatypes::{encode_recordbatch, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use futures::{Sink, StreamExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, PgWireServerHandlers, Type};
use pgwire::api::{ConnectionGuard, ConnectionHandle, ConnectionManager};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use quarry_coordinator::front::ROLLBACK_TO_SAVEPOINT;
use quarry_coordinator::split::split_statements;
use quarry_coordinator::{CoordinatorError, Output, Prepared, Session};

use crate::errors::{error_info, user_error};
use crate::fields::pg_fields;
use crate::startup::{QuarryStartup, StartupPolicy};

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
        Self {
            backend: Arc::new(QuarryBackend {
                session: Arc::clone(&session),
                parser: Arc::new(QuarryParser {
                    session: Arc::clone(&session),
                }),
                cancel: Arc::clone(&slot),
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
}

pub(crate) struct QuarryParser {
    session: Arc<Session>,
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
                    Ok(batch) => encode_recordbatch(Arc::clone(&row_fields), batch),
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
        for statement in split_statements(query) {
            if let Some(name) = deallocated(&statement) {
                // Prepared statements live in pgwire's per-connection store.
                if let Some(name) = name {
                    client.portal_store().rm_statement(&name);
                }
                responses.push(Response::Execution(Tag::new("DEALLOCATE")));
                continue;
            }
            self.cancel.arm(&self.session).await;
            match self.session.execute(&statement).await {
                Ok(output) => responses.push(response(output, &Format::UnifiedText)?),
                Err(e) => {
                    // Like PostgreSQL: the statements before still count, the rest are skipped.
                    responses.push(Response::Error(Box::new(error_info(&e))));
                    break;
                }
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl QueryParser for QuarryParser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.session
            .prepare(sql)
            .await
            .map(Some)
            .map_err(user_error)
    }

    fn get_parameter_types(&self, statement: &Prepared) -> PgWireResult<Vec<Type>> {
        let Prepared::Plan { plan, .. } = statement else {
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
        statement: &Prepared,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match statement {
            Prepared::Plan { plan, .. } => pg_fields(
                plan.schema().as_arrow(),
                format.unwrap_or(&Format::UnifiedText),
            ),
            // Quarry's statements learn their columns when they run.
            Prepared::Quarry { .. } => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for QuarryBackend {
    type Statement = Prepared;
    type QueryParser = QuarryParser;

    fn query_parser(&self) -> Arc<QuarryParser> {
        Arc::clone(&self.parser)
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.cancel.arm(&self.session).await;
        let output = match &portal.statement.statement {
            Prepared::Quarry { sql, statement } => {
                self.session.execute_quarry(sql, statement.clone()).await
            }
            Prepared::Plan { sql, plan } => {
                let types = parameter_types(plan)?;
                let type_refs: Vec<Option<&DataType>> = types.iter().map(Option::as_ref).collect();
                let params = deserialize_parameters(portal, &type_refs)?;
                let bound = plan.clone().with_param_values(params).map_err(pg_error)?;
                self.session.execute_plan(sql, bound).await
            }
        };
        response(output.map_err(user_error)?, &portal.result_column_format)
    }
}
