//! `quarry shell --host H --port P`: the shell against a running Quarry (a coordinator or
//! `quarry local --listen`) over the PostgreSQL protocol.
//!
//! Statements go as simple queries, so results arrive as text: they are shown as they
//! came, and columns whose values all read as numbers are right-aligned in tables.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use quarry_coordinator::Output;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Field metadata that marks a text column holding numbers (for alignment).
pub const NUMERIC_TEXT: &str = "quarry.numeric_text";

/// A connection to a running Quarry.
pub struct Remote {
    client: tokio_postgres::Client,
    /// `host:port`, for the prompt.
    pub address: String,
}

/// How the shell uses TLS, as psql's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// TLS when the server offers it, without checking its certificate (psql's default).
    Prefer,
    /// TLS or no connection, without checking the certificate.
    Require,
    /// TLS with a certificate signed by `--sslrootcert` for the host name connected to.
    VerifyFull,
}

/// Where and how to connect.
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub ssl_mode: SslMode,
    /// PEM file of the certificate authorities `verify-full` trusts.
    pub root_cert: Option<&'a Path>,
}

impl Remote {
    pub async fn connect(target: Target<'_>) -> Result<Remote, String> {
        let Target { host, port, .. } = target;
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(port)
            .user(target.user)
            .dbname("quarry")
            .application_name("quarry shell")
            .ssl_mode(match target.ssl_mode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        // As psql: a server that requires passwords gets the one in PGPASSWORD.
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        let tls = MakeRustlsConnect::new(tls_config(target.ssl_mode, target.root_cert)?);
        let (client, connection) = config.connect(tls).await.map_err(|e| {
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

/// The TLS client configuration for `mode`: `verify-full` trusts the authorities in
/// `root_cert` and checks the host name; `prefer` and `require` encrypt without checking
/// who answers, as psql does.
fn tls_config(mode: SslMode, root_cert: Option<&Path>) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match (mode, root_cert) {
        (SslMode::VerifyFull, None) => {
            return Err(
                "--sslmode verify-full needs --sslrootcert FILE (the certificate \
                        authorities to trust, in PEM)"
                    .to_string(),
            );
        }
        (SslMode::VerifyFull, Some(path)) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read --sslrootcert {}: {e}", path.display()))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| format!("cannot read --sslrootcert {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("--sslrootcert {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!(
                    "--sslrootcert {}: no certificate in the file",
                    path.display()
                ));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// Accepts any server certificate (`sslmode` prefer/require), still checking that the
/// server holds the certificate's key.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
