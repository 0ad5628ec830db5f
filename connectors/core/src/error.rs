use datafusion::error::DataFusionError;

/// Errors of connector catalogs. Each names the catalog and, where there is one, the
/// remote object.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("unknown connector \"{0}\": supported are postgres and mysql")]
    UnknownConnector(String),
    #[error("catalog \"{catalog}\": option \"{option}\" is required")]
    MissingOption { catalog: String, option: String },
    #[error("catalog \"{catalog}\": unknown option \"{option}\" (known: {known})")]
    UnknownOption {
        catalog: String,
        option: String,
        known: String,
    },
    #[error("catalog \"{catalog}\": bad value for option \"{option}\": {reason}")]
    BadOption {
        catalog: String,
        option: String,
        reason: String,
    },
    #[error(
        "{connector} catalog \"{catalog}\": cannot connect to {host} within {seconds} s \
         (connect_timeout)"
    )]
    ConnectTimeout {
        connector: &'static str,
        catalog: String,
        host: String,
        seconds: u64,
    },
    #[error("{connector} catalog \"{catalog}\": cannot connect to {host}: {message}")]
    Connect {
        connector: &'static str,
        catalog: String,
        host: String,
        message: String,
    },
    #[error("{connector} catalog \"{catalog}\": {message}")]
    Remote {
        connector: &'static str,
        catalog: String,
        message: String,
    },
    #[error("{connector} catalog \"{catalog}\": table \"{table}\" does not exist")]
    TableNotFound {
        connector: &'static str,
        catalog: String,
        table: String,
    },
    #[error(
        "{connector} catalog \"{catalog}\": the source changed since the query was planned: {detail}"
    )]
    Changed {
        connector: &'static str,
        catalog: String,
        detail: String,
    },
    #[error(
        "{connector} catalog \"{catalog}\": unsupported type \"{data_type}\" for column \"{column}\" \
         of table \"{table}\"{hint}",
        hint = if *connector == "postgres" { " (unsupported_types = 'text' reads it as text)" } else { "" }
    )]
    UnsupportedType {
        connector: &'static str,
        catalog: String,
        table: String,
        column: String,
        data_type: String,
    },
    #[error("catalog \"{0}\" does not exist")]
    CatalogNotFound(String),
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("{0}")]
    Resolve(String),
}

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

impl From<ConnectorError> for DataFusionError {
    fn from(e: ConnectorError) -> Self {
        DataFusionError::External(Box::new(e))
    }
}
