//! A connector catalog's definition: which connector, and its checked options.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use datafusion::common::extensions_options;
use datafusion::config::ConfigExtension;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::{ConnectorError, Result};

extensions_options! {
    /// Session settings of connector catalogs (`SET quarry.pushdown = false`).
    pub struct QuarryOptions {
        /// Send filters, projections and limits to PostgreSQL/MySQL sources. Off: sources
        /// are read whole and everything is computed by Quarry.
        pub pushdown: bool, default = true
    }
}

impl ConfigExtension for QuarryOptions {
    const PREFIX: &'static str = "quarry";
}

/// The kinds of source a catalog can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectorKind {
    Postgres,
    MySql,
}

impl ConnectorKind {
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::MySql),
            _ => Err(ConnectorError::UnknownConnector(name.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::MySql => "mysql",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Postgres => 5432,
            Self::MySql => 3306,
        }
    }

    /// Options a catalog of this kind accepts (today the same for both kinds).
    fn known_options(self) -> &'static [&'static str] {
        &[
            "host",
            "port",
            "database",
            "user",
            "password",
            "sslmode",
            "connect_timeout",
            "unsupported_types",
            "splits",
            "join_pushdown",
        ]
    }
}

impl fmt::Display for ConnectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A catalog as a process uses it: options checked, password in clear (in memory only).
#[derive(Clone)]
pub struct CatalogConfig {
    pub name: String,
    pub kind: ConnectorKind,
    /// Every option but the password, as given (lower-case keys).
    pub options: BTreeMap<String, String>,
    pub password: Option<SecretString>,
    /// Changes whenever the catalog is created again: processes holding a connection pool
    /// for an older version rebuild it.
    pub version: i64,
}

impl fmt::Debug for CatalogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("options", &self.options)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("version", &self.version)
            .finish()
    }
}

/// What travels from the coordinator to a worker that asks for a catalog (the password
/// in clear, over the cluster's authenticated channel).
#[derive(Serialize, Deserialize)]
pub struct CatalogWire {
    pub name: String,
    pub kind: ConnectorKind,
    pub options: BTreeMap<String, String>,
    pub password: Option<String>,
    pub version: i64,
}

impl CatalogConfig {
    /// Checks `options` (from `CREATE CATALOG ... WITH (...)`) for a connector of `kind`.
    pub fn new(
        name: &str,
        kind: ConnectorKind,
        mut options: BTreeMap<String, String>,
        version: i64,
    ) -> Result<Self> {
        let known = kind.known_options();
        if let Some(option) = options.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ConnectorError::UnknownOption {
                catalog: name.to_string(),
                option: option.clone(),
                known: known.join(", "),
            });
        }
        let password = options.remove("password").map(SecretString::from);
        let config = Self {
            name: name.to_string(),
            kind,
            options,
            password,
            version,
        };
        for required in ["host", "user"] {
            config.required(required)?;
        }
        if kind == ConnectorKind::Postgres {
            config.required("database")?;
        }
        config.port()?;
        config.connect_timeout()?;
        config.splits()?;
        config.join_pushdown()?;
        config.read_unsupported_as_text()?;
        Ok(config)
    }

    pub fn to_wire(&self) -> CatalogWire {
        CatalogWire {
            name: self.name.clone(),
            kind: self.kind,
            options: self.options.clone(),
            password: self
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string()),
            version: self.version,
        }
    }

    pub fn from_wire(wire: CatalogWire) -> Self {
        Self {
            name: wire.name,
            kind: wire.kind,
            options: wire.options,
            password: wire.password.map(SecretString::from),
            version: wire.version,
        }
    }

    fn bad(&self, option: &str, reason: impl Into<String>) -> ConnectorError {
        ConnectorError::BadOption {
            catalog: self.name.clone(),
            option: option.to_string(),
            reason: reason.into(),
        }
    }

    fn required(&self, option: &str) -> Result<&str> {
        self.options
            .get(option)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConnectorError::MissingOption {
                catalog: self.name.clone(),
                option: option.to_string(),
            })
    }

    pub fn host(&self) -> &str {
        self.options.get("host").map(String::as_str).unwrap_or("")
    }

    pub fn user(&self) -> &str {
        self.options.get("user").map(String::as_str).unwrap_or("")
    }

    pub fn database(&self) -> Option<&str> {
        self.options
            .get("database")
            .map(String::as_str)
            .filter(|d| !d.is_empty())
    }

    pub fn port(&self) -> Result<u16> {
        match self.options.get("port") {
            None => Ok(self.kind.default_port()),
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| self.bad("port", format!("\"{p}\" is not a TCP port"))),
        }
    }

    /// `host:port`, as errors name the source.
    pub fn address(&self) -> String {
        format!(
            "{}:{}",
            self.host(),
            self.port().unwrap_or(self.kind.default_port())
        )
    }

    /// How long connecting may take (`connect_timeout`, like `10s` or `500ms`; default 10 s).
    pub fn connect_timeout(&self) -> Result<Duration> {
        let Some(text) = self.options.get("connect_timeout") else {
            return Ok(Duration::from_secs(10));
        };
        parse_duration(text).ok_or_else(|| {
            self.bad(
                "connect_timeout",
                format!("\"{text}\" is not a duration like 10s or 500ms"),
            )
        })
    }

    /// Into how many parallel reads a large table scan is cut (`splits`, default 1).
    pub fn splits(&self) -> Result<usize> {
        let Some(text) = self.options.get("splits") else {
            return Ok(1);
        };
        text.parse::<usize>()
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                self.bad(
                    "splits",
                    format!("\"{text}\" is not a number from 1 to 256"),
                )
            })
    }

    /// Whether joins of this catalog's tables may run in the source (`join_pushdown`).
    /// On by default for PostgreSQL, which plans joins with statistics and hash joins; off
    /// for MySQL/MariaDB, which joins tables without an index by nested loops (a TPC-H
    /// join there is minutes where Quarry's hash join takes milliseconds).
    pub fn join_pushdown(&self) -> Result<bool> {
        match self.options.get("join_pushdown").map(String::as_str) {
            None => Ok(self.kind == ConnectorKind::Postgres),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => {
                Err(self.bad("join_pushdown", format!("\"{other}\": use true or false")))
            }
        }
    }

    /// Whether columns of types without an Arrow mapping are read as text
    /// (`unsupported_types = 'text'`) instead of refusing the table (`'error'`, default).
    pub fn read_unsupported_as_text(&self) -> Result<bool> {
        match self.options.get("unsupported_types").map(String::as_str) {
            None | Some("error") => Ok(false),
            Some("text") => Ok(true),
            Some(other) => Err(self.bad(
                "unsupported_types",
                format!("\"{other}\": use 'error' or 'text'"),
            )),
        }
    }

    pub fn sslmode(&self) -> Option<&str> {
        self.options.get("sslmode").map(String::as_str)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.')?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "min" | "m" => number * 60.0,
        _ => return None,
    };
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_checked_and_named_in_errors() {
        let ok = CatalogConfig::new(
            "sales",
            ConnectorKind::Postgres,
            options(&[
                ("host", "db1"),
                ("database", "shop"),
                ("user", "u"),
                ("password", "p"),
                ("connect_timeout", "500ms"),
            ]),
            1,
        )
        .unwrap();
        assert_eq!(ok.address(), "db1:5432");
        assert_eq!(ok.connect_timeout().unwrap(), Duration::from_millis(500));
        assert!(!ok.options.contains_key("password"));
        assert!(!format!("{ok:?}").contains("\"p\""));

        let missing = CatalogConfig::new(
            "sales",
            ConnectorKind::Postgres,
            options(&[("host", "db1"), ("user", "u")]),
            1,
        )
        .unwrap_err();
        assert_eq!(
            missing.to_string(),
            "catalog \"sales\": option \"database\" is required"
        );
        let unknown = CatalogConfig::new(
            "m",
            ConnectorKind::MySql,
            options(&[("host", "h"), ("user", "u"), ("hots", "x")]),
            1,
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("unknown option \"hots\""));
        let port = CatalogConfig::new(
            "m",
            ConnectorKind::MySql,
            options(&[("host", "h"), ("user", "u"), ("port", "99999")]),
            1,
        )
        .unwrap_err();
        assert!(port.to_string().contains("\"99999\" is not a TCP port"));
        assert!(ConnectorKind::parse("oracle").is_err());
    }
}
