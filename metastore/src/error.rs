use thiserror::Error;

/// Errors of the metastore. Each names the object it is about.
#[derive(Debug, Error)]
pub enum MetastoreError {
    #[error("database \"{0}\" does not exist")]
    DatabaseNotFound(String),
    #[error("database \"{0}\" already exists")]
    DatabaseExists(String),
    #[error(
        "database \"{database}\" is not empty ({tables} tables); use DROP DATABASE ... CASCADE"
    )]
    DatabaseNotEmpty { database: String, tables: usize },
    #[error("table \"{database}.{table}\" does not exist")]
    TableNotFound { database: String, table: String },
    #[error("table \"{database}.{table}\" already exists")]
    TableExists { database: String, table: String },
    #[error("partition {spec} of table \"{database}.{table}\" already exists")]
    PartitionExists {
        database: String,
        table: String,
        spec: String,
    },
    #[error("partition {spec} of table \"{database}.{table}\" does not exist")]
    PartitionNotFound {
        database: String,
        table: String,
        spec: String,
    },
    #[error("catalog \"{0}\" already exists")]
    CatalogExists(String),
    #[error("role \"{0}\" already exists")]
    UserExists(String),
    #[error("role \"{0}\" does not exist")]
    UserNotFound(String),
    #[error("metastore record of user \"{0}\" is corrupt")]
    CorruptUser(String),
    #[error("invalid Hive type \"{text}\": {reason}")]
    InvalidType { text: String, reason: String },
    #[error("metastore record for {object} is corrupt: {source}")]
    Corrupt {
        object: String,
        source: serde_json::Error,
    },
    #[error("unsupported metastore URL scheme \"{0}\"; use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl(String),
    #[error("metastore storage error: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("metastore migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

/// Result of metastore operations.
pub type Result<T, E = MetastoreError> = std::result::Result<T, E>;
