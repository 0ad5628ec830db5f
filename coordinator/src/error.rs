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
    #[error(transparent)]
    Metastore(#[from] MetastoreError),
    #[error(transparent)]
    Files(#[from] FilesError),
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
        DataFusionError::Plan(msg) => msg.clone(),
        DataFusionError::SchemaError(e, _) => e.to_string(),
        DataFusionError::SQL(e, _) => format!("syntax error: {e}"),
        DataFusionError::NotImplemented(msg) => format!("not supported: {msg}"),
        DataFusionError::Execution(msg) => match RemoteFailure::parse(msg) {
            Some(remote) if remote.kind == "ResourcesExhausted" => {
                format!("resources exhausted: {}", remote.message)
            }
            Some(remote) => remote.message,
            None => msg.clone(),
        },
        DataFusionError::ResourcesExhausted(msg) => format!("resources exhausted: {msg}"),
        other => other.to_string(),
    }
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
        let mut rest = text[text.find(MARKER)? + MARKER.len()..].trim();
        let mut kind = String::new();
        // Peel `Variant(...)` wrappers down to the message.
        while let Some(open) = rest.find('(')
            && open > 0
            && rest.ends_with(')')
            && rest[..open].chars().all(|c| c.is_ascii_alphanumeric())
        {
            let variant = &rest[..open];
            if !matches!(
                variant,
                "DataFusionError" | "Shared" | "External" | "ArrowError"
            ) {
                kind = variant.to_string();
            }
            rest = &rest[open + 1..rest.len() - 1];
        }
        // Debug output quotes the message the way JSON does for everything Quarry's
        // messages contain.
        let message = serde_json::from_str::<String>(rest).unwrap_or_else(|_| rest.to_string());
        Some(RemoteFailure { kind, message })
    }
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
    }
}
