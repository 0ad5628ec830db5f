use thiserror::Error;

/// Errors of file tables, each naming the table, location, file or column involved.
#[derive(Debug, Error)]
pub enum FilesError {
    #[error("invalid location \"{location}\": {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("location \"{location}\" does not exist")]
    LocationNotFound { location: String },
    #[error("cannot read location \"{location}\": {reason}")]
    Unreadable { location: String, reason: String },
    #[error("table \"{table}\": {reason}")]
    BadTableProperty { table: String, reason: String },
    #[error("partition value \"{value}\" is not a valid {hive_type} for partition key \"{key}\"")]
    BadPartitionValue {
        key: String,
        value: String,
        hive_type: String,
    },
    #[error("type {0} has no Hive equivalent")]
    UnsupportedArrowType(String),
    #[error("S3 configuration for bucket \"{bucket}\": {reason}")]
    S3Config { bucket: String, reason: String },
}

/// Result of file-table operations.
pub type Result<T, E = FilesError> = std::result::Result<T, E>;

impl From<FilesError> for datafusion::error::DataFusionError {
    fn from(err: FilesError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(err))
    }
}
