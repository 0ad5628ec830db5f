use thiserror::Error;

/// Errors of the crawler, each naming the crawler, option, location or object involved.
#[derive(Debug, Error)]
pub enum CrawlerError {
    #[error("crawler \"{crawler}\": option {option}: {reason}")]
    InvalidOption {
        crawler: String,
        option: String,
        reason: String,
    },
    #[error("crawler \"{0}\" does not exist")]
    NotFound(String),
    #[error("crawler \"{0}\" already exists")]
    Exists(String),
    #[error("crawler \"{0}\" is already running")]
    AlreadyRunning(String),
    #[error("crawler \"{crawler}\": stored definition is corrupt: {source}")]
    CorruptDefinition {
        crawler: String,
        source: serde_json::Error,
    },
    #[error("crawler \"{crawler}\": cannot list {location}: {source}")]
    Listing {
        crawler: String,
        location: String,
        source: datafusion::object_store::Error,
    },
    #[error("crawler \"{crawler}\": the object store failed while reading {key}: {reason}")]
    StoreFailed {
        crawler: String,
        key: String,
        reason: String,
    },
    #[error(transparent)]
    Metastore(#[from] quarry_metastore::MetastoreError),
    #[error(transparent)]
    Files(#[from] quarry_files::FilesError),
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

/// Result of crawler operations.
pub type Result<T, E = CrawlerError> = std::result::Result<T, E>;
