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
        DataFusionError::Execution(msg) => msg.clone(),
        DataFusionError::ResourcesExhausted(msg) => format!("resources exhausted: {msg}"),
        other => other.to_string(),
    }
}
