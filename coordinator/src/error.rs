use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use quarry_files::FilesError;
use quarry_metastore::MetastoreError;
use thiserror::Error;

/// Errors of statements run by the coordinator.
#[derive(Debug, Error)]
pub enum CoordinatorError {
    #[error("syntax error: {0}")]
    Syntax(String),
    #[error("not supported: {0}")]
    Unsupported(String),
    #[error("catalog \"{0}\" does not exist (the metastore's catalog is \"quarry\")")]
    CatalogNotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// The session's user may not run the statement.
    #[error("{0}")]
    PermissionDenied(String),
    /// The statement was stopped (statement_timeout, cancel request).
    #[error("{0}")]
    Cancelled(String),
    #[error(transparent)]
    Metastore(#[from] MetastoreError),
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error(transparent)]
    Connector(#[from] quarry_connectors::ConnectorError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

/// Result of coordinator operations.
pub type Result<T, E = CoordinatorError> = std::result::Result<T, E>;

impl CoordinatorError {
    /// The message for users: DataFusion's wrapping (`External error: ...`) is peeled off
    /// so the message names the object, not the layer.
    pub fn user_message(&self) -> String {
        match self {
            CoordinatorError::DataFusion(e) => datafusion_message(e),
            other => other.to_string(),
        }
    }
}

fn datafusion_message(err: &DataFusionError) -> String {
    match err {
        DataFusionError::External(inner) => match inner.downcast_ref::<DataFusionError>() {
            Some(df) => datafusion_message(df),
            None => inner.to_string(),
        },
        DataFusionError::Context(context, inner) => {
            format!("{context}: {}", datafusion_message(inner))
        }
        DataFusionError::Shared(inner) => datafusion_message(inner),
        DataFusionError::Diagnostic(_, inner) => datafusion_message(inner),
        DataFusionError::Plan(msg) => plan_message(msg),
        DataFusionError::SchemaError(e, _) => schema_message(e),
        DataFusionError::SQL(e, _) => format!("syntax error: {e}"),
        DataFusionError::NotImplemented(msg) => format!("not supported: {msg}"),
        DataFusionError::Execution(msg) => match RemoteFailure::parse(msg) {
            Some(remote) if remote.kind == "ResourcesExhausted" => {
                format!("resources exhausted: {}", remote.message)
            }
            Some(remote) if is_local_file_missing(&remote.message) => format!(
                "{}; a worker could not read this local path: in a cluster, table locations \
                 must be s3:// or on a file system every worker mounts at the same path",
                remote.message
            ),
            Some(remote) if remote.kind == "Plan" => plan_message(&remote.message),
            Some(remote) => remote.message,
            None => msg.clone(),
        },
        DataFusionError::ResourcesExhausted(msg) => format!("resources exhausted: {msg}"),
        other => other.to_string(),
    }
}

/// A missing column in PostgreSQL's words (`column "x" does not exist`), then DataFusion's
/// suggestions (a close name, the valid ones).
fn schema_message(err: &SchemaError) -> String {
    let text = err.to_string();
    match err {
        SchemaError::FieldNotFound { field, .. } => {
            let rest = text
                .strip_prefix(&format!("No field named {}", field.quoted_flat_name()))
                .unwrap_or_default();
            format!("column \"{}\" does not exist{rest}", field.flat_name())
        }
        _ => text,
    }
}

/// DataFusion's words when no signature of a function takes the arguments given come
/// after its internal error text, which asks users to report a bug; only they are kept.
fn plan_message(msg: &str) -> String {
    match msg.find(NO_SIGNATURE) {
        Some(at) => msg[at..].to_string(),
        None => msg.to_string(),
    }
}

const NO_SIGNATURE: &str = "No function matches the given name and argument types";

/// Whether a planning error says a function does not exist or takes no such arguments
/// (SQLSTATE 42883).
pub fn is_undefined_function(plan_message: &str) -> bool {
    plan_message.contains(NO_SIGNATURE) || plan_message.starts_with("Invalid function '")
}

/// Whether a worker's error says a file does not exist where the local file system was
/// asked (object_store's `NotFound { path: ... }` or "Object at location /... not found").
fn is_local_file_missing(message: &str) -> bool {
    let lower = message.to_lowercase();
    (lower.contains("not found") || lower.contains("notfound") || lower.contains("no such file"))
        && (lower.contains("location /") || lower.contains("path: \"") || lower.contains("file://"))
}

/// A task's failure on a worker, recovered from the text Ballista reports for the job:
/// `Job J failed: Job failed due to stage S failed: Task failed due to runtime execution
/// error: DataFusionError(Shared(External(DataFusionError(Plan("...")))))`.
#[derive(Debug, PartialEq, Eq)]
pub struct RemoteFailure {
    /// The innermost error variant (`Plan`, `ResourcesExhausted`, `CastError`, ...).
    pub kind: String,
    /// Its message, unquoted.
    pub message: String,
}

impl RemoteFailure {
    pub fn parse(text: &str) -> Option<RemoteFailure> {
        const MARKER: &str = "Task failed due to runtime execution error: ";
        let rest = text[text.find(MARKER)? + MARKER.len()..].trim();
        let (kind, message) = peel(rest);
        Some(RemoteFailure { kind, message })
    }
}

/// Reads a Debug-printed error: `Variant(...)` wrappers around a quoted message, where
/// `Context("what", inner)` adds its text before the inner message.
fn peel(text: &str) -> (String, String) {
    let text = text.trim();
    if text.starts_with('"') {
        // Debug output quotes a message the way JSON does for everything Quarry's
        // messages contain.
        let mut quoted = serde_json::Deserializer::from_str(text).into_iter::<String>();
        if let Some(Ok(first)) = quoted.next() {
            let after = text[quoted.byte_offset()..].trim_start();
            return match after.strip_prefix(',') {
                // `"context", Inner(...)`
                Some(inner) => {
                    let (kind, message) = peel(inner);
                    (kind, format!("{first}: {message}"))
                }
                None => (String::new(), first),
            };
        }
    }
    if let Some(open) = text.find('(')
        && open > 0
        && text.ends_with(')')
        && text[..open].chars().all(|c| c.is_ascii_alphanumeric())
    {
        let variant = &text[..open];
        let (kind, message) = peel(&text[open + 1..text.len() - 1]);
        let wrapper = matches!(
            variant,
            "DataFusionError" | "Shared" | "External" | "ArrowError" | "Context"
        );
        return match (kind.is_empty(), wrapper) {
            (true, false) => (variant.to_string(), message),
            _ => (kind, message),
        };
    }
    (String::new(), text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_failure_reads_like_a_local_one() {
        let text = r#"Job 038GMNZJFA000 failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(Shared(External(DataFusionError(Plan("table default.t: column \"id\" is stored as Utf8")))))"#;
        assert_eq!(
            RemoteFailure::parse(text),
            Some(RemoteFailure {
                kind: "Plan".into(),
                message: r#"table default.t: column "id" is stored as Utf8"#.into(),
            })
        );
        let oom = r#"Job J failed: Job failed due to stage 2 failed: Task failed due to runtime execution error: DataFusionError(ResourcesExhausted("Failed to allocate 1 MB for HashJoinInput"))"#;
        assert_eq!(
            CoordinatorError::DataFusion(DataFusionError::Execution(oom.into())).user_message(),
            "resources exhausted: Failed to allocate 1 MB for HashJoinInput"
        );
        assert_eq!(
            RemoteFailure::parse("Job J failed: all executors were lost"),
            None
        );
        let sort = r#"Job J failed: Job failed due to stage 3 failed: Task failed due to runtime execution error: DataFusionError(Context("Not enough memory to continue external sort", ResourcesExhausted("Failed to allocate additional 10.0 MB for ExternalSorterMerge[1] - 6.0 MB remain available for the total memory pool: fair(pool_size: 16.0 MB)")))"#;
        assert_eq!(
            RemoteFailure::parse(sort),
            Some(RemoteFailure {
                kind: "ResourcesExhausted".into(),
                message: "Not enough memory to continue external sort: Failed to allocate additional 10.0 MB for ExternalSorterMerge[1] - 6.0 MB remain available for the total memory pool: fair(pool_size: 16.0 MB)".into(),
            })
        );
        let missing = r#"Job J failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(ObjectStore("Object at location /data/t/part-0.parquet not found: No such file or directory (os error 2)"))"#;
        let message =
            CoordinatorError::DataFusion(DataFusionError::Execution(missing.into())).user_message();
        assert!(message.starts_with("Object at location /data/t/part-0.parquet not found"));
        assert!(message.contains("must be s3://"), "{message}");
        let debug = r#"Job J failed: Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(ObjectStore(NotFound { path: "data/t/part-0.parquet", source: Os { code: 2, kind: NotFound, message: "No such file or directory" } }))"#;
        let message =
            CoordinatorError::DataFusion(DataFusionError::Execution(debug.into())).user_message();
        assert!(message.contains("data/t/part-0.parquet"), "{message}");
        assert!(message.contains("must be s3://"), "{message}");
    }
}
