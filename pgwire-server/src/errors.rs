//! SQLSTATE codes for Quarry's errors: decided by error type, in this one place.

use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use quarry_connectors::ConnectorError;
use quarry_coordinator::{CoordinatorError, RemoteFailure, is_undefined_function};
use quarry_metastore::MetastoreError;

use crate::cursors::CursorError;

fn metastore_sqlstate(e: &MetastoreError) -> &'static str {
    match e {
        MetastoreError::DatabaseNotFound(_) => "3F000",
        MetastoreError::DatabaseExists(_) => "42P06",
        MetastoreError::CatalogExists(_) | MetastoreError::UserExists(_) => "42710",
        MetastoreError::UserNotFound(_) => "42704",
        MetastoreError::DatabaseNotEmpty { .. } => "2BP01",
        MetastoreError::TableNotFound { .. } => "42P01",
        MetastoreError::TableExists { .. } | MetastoreError::PartitionExists { .. } => "42P07",
        MetastoreError::PartitionNotFound { .. } | MetastoreError::InvalidType { .. } => "42704",
        _ => "XX000",
    }
}

fn connector_sqlstate(e: &ConnectorError) -> &'static str {
    match e {
        ConnectorError::CatalogNotFound(_) => "3D000",
        ConnectorError::UnknownConnector(_)
        | ConnectorError::MissingOption { .. }
        | ConnectorError::UnknownOption { .. }
        | ConnectorError::BadOption { .. } => "22023",
        ConnectorError::Connect { .. } | ConnectorError::ConnectTimeout { .. } => "08001",
        ConnectorError::TableNotFound { .. } => "42P01",
        _ => "XX000",
    }
}

fn sqlstate(err: &CoordinatorError) -> &'static str {
    match err {
        CoordinatorError::Syntax(_) => "42601",
        CoordinatorError::Unsupported(_) => "0A000",
        CoordinatorError::CatalogNotFound(_) => "3D000",
        CoordinatorError::Invalid(_) => "22023",
        CoordinatorError::PermissionDenied(_) => "42501",
        CoordinatorError::Cancelled(_) => "57014",
        CoordinatorError::Metastore(e) => metastore_sqlstate(e),
        CoordinatorError::Files(_) => "58030",
        CoordinatorError::Connector(e) => connector_sqlstate(e),
        CoordinatorError::DataFusion(e) => datafusion_sqlstate(e),
    }
}

fn datafusion_sqlstate(err: &DataFusionError) -> &'static str {
    match err {
        DataFusionError::SQL(..) => "42601",
        DataFusionError::SchemaError(..) => "42703",
        DataFusionError::Plan(msg) => plan_sqlstate(msg),
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ResourcesExhausted(_) => "53200",
        // A task that failed on a worker: the code of the error it failed with.
        DataFusionError::Execution(msg) => match RemoteFailure::parse(msg) {
            Some(remote) => match remote.kind.as_str() {
                "ResourcesExhausted" => "53200",
                "Plan" => plan_sqlstate(&remote.message),
                "SchemaError" => "42703",
                "NotImplemented" => "0A000",
                _ => "XX000",
            },
            None => "XX000",
        },
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            datafusion_sqlstate(inner)
        }
        DataFusionError::Shared(inner) => datafusion_sqlstate(inner),
        DataFusionError::External(inner) => {
            if let Some(inner) = inner.downcast_ref::<DataFusionError>() {
                datafusion_sqlstate(inner)
            } else if let Some(inner) = inner.downcast_ref::<CoordinatorError>() {
                sqlstate(inner)
            } else if let Some(inner) = inner.downcast_ref::<MetastoreError>() {
                metastore_sqlstate(inner)
            } else if let Some(inner) = inner.downcast_ref::<ConnectorError>() {
                connector_sqlstate(inner)
            } else if inner.is::<quarry_files::FilesError>() {
                "58030"
            } else {
                "XX000"
            }
        }
        _ => "XX000",
    }
}

fn plan_sqlstate(message: &str) -> &'static str {
    if is_undefined_function(message) {
        "42883"
    } else {
        "42000"
    }
}

/// The ErrorResponse a client sees. An error Quarry has no code for (XX000) that a
/// PostgreSQL or MySQL source raised keeps the source's code: a table dropped in the
/// source after planning is 42P01, a division by zero in a pushed-down query 22012.
pub(crate) fn error_info(err: &CoordinatorError) -> ErrorInfo {
    let message = err.user_message();
    let code = match sqlstate(err) {
        "XX000" => source_sqlstate(&message).unwrap_or_else(|| "XX000".to_string()),
        code => code.to_string(),
    };
    ErrorInfo::new("ERROR".to_string(), code, message)
}

/// The SQLSTATE in the text of a source's error, as the connectors report them (also
/// from workers, whose errors arrive as text): PostgreSQL's `SQLSTATE: 42P01`
/// (datafusion-table-providers' rendering), MySQL's `ERROR 1146 (42S02): ...`, whose
/// codes for a missing table and column become PostgreSQL's.
fn source_sqlstate(message: &str) -> Option<String> {
    let code_at = |text: &str| {
        let code: String = text.chars().take(5).collect();
        (code.len() == 5 && code.chars().all(|c| c.is_ascii_alphanumeric())).then_some(code)
    };
    if let Some(at) = message.find("SQLSTATE: ") {
        return code_at(&message[at + "SQLSTATE: ".len()..]);
    }
    let at = message.find("ERROR ")?;
    let rest = &message[at + "ERROR ".len()..];
    let state = code_at(&rest[rest.find(" (")? + 2..])?;
    match state.as_str() {
        "42S02" => Some("42P01".to_string()),
        "42S22" => Some("42703".to_string()),
        _ => None,
    }
}

/// Errors of cursor statements: PostgreSQL's codes for a missing or duplicate cursor.
pub(crate) fn cursor_error(err: CursorError) -> PgWireError {
    let code = match err {
        CursorError::Unknown(_) => "34000",
        CursorError::Duplicate(_) => "42P03",
        CursorError::ForwardOnly => "0A000",
    };
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_string(),
        code.to_string(),
        err.to_string(),
    )))
}

/// A wrong password or an unknown user: PostgreSQL's words for both (no user enumeration).
pub(crate) fn password_failed(user: &str) -> PgWireError {
    fatal(
        "28P01",
        format!("password authentication failed for user \"{user}\""),
    )
}

/// A plaintext connection to a server started with `--require-tls`, refused as PostgreSQL
/// refuses one that only `hostssl` lines would admit.
pub(crate) fn tls_required(user: &str) -> PgWireError {
    fatal(
        "28000",
        format!(
            "no encryption: this server requires TLS (--require-tls); user \"{user}\" must \
             connect with sslmode=require"
        ),
    )
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message,
    )))
}

pub(crate) fn user_error(err: CoordinatorError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(message: &str) -> String {
        let err = CoordinatorError::DataFusion(DataFusionError::Execution(message.to_string()));
        error_info(&err).code
    }

    #[test]
    fn a_sources_own_sqlstate_is_kept_for_errors_quarry_has_no_code_for() {
        // As datafusion-table-providers renders a PostgreSQL error.
        let postgres = "postgres catalog \"pg\": Query execution failed.\n\
            db error: ERROR: relation \"public.retyped\" does not exist\nSQLSTATE: 42P01\n\
            For details, refer to the PostgreSQL manual (query: SELECT ...)";
        assert_eq!(code_of(postgres), "42P01");
        assert_eq!(
            code_of("... division by zero\nSQLSTATE: 22012\n..."),
            "22012"
        );
        // mysql_async's rendering; MySQL's codes for a missing table or column mapped.
        let mysql = "mysql catalog \"my\": Server error: `ERROR 1146 (42S02): Table \
            'shop.gone' doesn't exist'";
        assert_eq!(code_of(mysql), "42P01");
        assert_eq!(code_of("ERROR 1064 (42000): You have an error"), "XX000");
        assert_eq!(code_of("something else failed"), "XX000");
    }
}
