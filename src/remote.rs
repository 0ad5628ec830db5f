//! `quarry shell --host H --port P`: the shell against a running Quarry (a coordinator or
//! `quarry local --listen`) over the PostgreSQL protocol.
//!
//! Statements go as simple queries, so results arrive as text: they are shown as they
//! came, and columns whose values all read as numbers are right-aligned in tables.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use quarry_coordinator::Output;
use tokio_postgres::{NoTls, SimpleQueryMessage};

/// Field metadata that marks a text column holding numbers (for alignment).
pub const NUMERIC_TEXT: &str = "quarry.numeric_text";

/// A connection to a running Quarry.
pub struct Remote {
    client: tokio_postgres::Client,
    /// `host:port`, for the prompt.
    pub address: String,
}

impl Remote {
    pub async fn connect(host: &str, port: u16, user: &str) -> Result<Remote, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(port)
            .user(user)
            .dbname("quarry")
            .application_name("quarry shell");
        // As psql: a server that requires passwords gets the one in PGPASSWORD.
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        let (client, connection) = config.connect(NoTls).await.map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            format!("cannot connect to {host}:{port}: {e}{cause}")
        })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("ERROR: connection lost: {e}");
            }
        });
        Ok(Remote {
            client,
            address: format!("{host}:{port}"),
        })
    }

    /// Runs one statement; rows come back as one batch of text columns.
    pub async fn execute(&self, sql: &str) -> Result<Output, String> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => db.message().to_string(),
                None => e.to_string(),
            })?;
        let mut columns: Option<Vec<String>> = None;
        let mut rows: Vec<Vec<Option<String>>> = Vec::new();
        let mut affected = None;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(described) => {
                    columns = Some(described.iter().map(|c| c.name().to_string()).collect());
                }
                SimpleQueryMessage::Row(row) => {
                    if columns.is_none() {
                        columns =
                            Some(row.columns().iter().map(|c| c.name().to_string()).collect());
                    }
                    rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => affected = Some(n),
                _ => {}
            }
        }
        match columns {
            Some(columns) => Ok(Output::Rows(text_batch(&columns, rows)?)),
            None => Ok(Output::Done(match affected {
                Some(n) if n > 0 => format!("OK {n}"),
                _ => "OK".to_string(),
            })),
        }
    }
}

/// Text rows as a stream of one batch; numeric-looking columns are marked.
fn text_batch(
    columns: &[String],
    rows: Vec<Vec<Option<String>>>,
) -> Result<datafusion::execution::SendableRecordBatchStream, String> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, name) in columns.iter().enumerate() {
        let values: Vec<Option<&str>> = rows.iter().map(|r| r[i].as_deref()).collect();
        let numeric = values.iter().flatten().count() > 0
            && values.iter().flatten().all(|v| v.parse::<f64>().is_ok());
        let mut field = Field::new(name, DataType::Utf8, true);
        if numeric {
            field = field.with_metadata([(NUMERIC_TEXT.to_string(), "true".to_string())].into());
        }
        fields.push(field);
        arrays.push(Arc::new(StringArray::from(values)));
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|e| e.to_string())?;
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(vec![Ok(batch)]),
    )))
}
