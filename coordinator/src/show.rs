//! SHOW and DESCRIBE: metadata from the metastore, as rows.

use quarry_metastore::{Table, TableType, partition_spec};

use crate::Result;
use crate::ddl::require_table;
use crate::front::Statement;
use crate::session::{Output, Session};

/// Columns of `SHOW DATABASES`, `SHOW TABLES`, ... (all text).
const DATABASES_COLUMNS: &[&str] = &["database_name"];
const TABLES_COLUMNS: &[&str] = &["tab_name"];
const PARTITIONS_COLUMNS: &[&str] = &["partition"];
const DESCRIBE_COLUMNS: &[&str] = &["col_name", "data_type", "comment"];
const SHOW_CREATE_COLUMNS: &[&str] = &["createtab_stmt"];
/// The one column of `MSCK REPAIR TABLE` and `ANALYZE TABLE`.
pub(crate) const RESULT_COLUMNS: &[&str] = &["result"];

impl Statement {
    /// The columns this statement returns, known before it runs (all text); `None` for
    /// a statement that only reports a command tag.
    pub fn result_columns(&self) -> Option<Vec<String>> {
        let columns: &[&str] = match self {
            Statement::ShowDatabases { .. } => DATABASES_COLUMNS,
            Statement::ShowTables { .. } => TABLES_COLUMNS,
            Statement::ShowPartitions { .. } => PARTITIONS_COLUMNS,
            Statement::Describe { .. } => DESCRIBE_COLUMNS,
            Statement::ShowCreateTable { .. } => SHOW_CREATE_COLUMNS,
            Statement::ShowVariable { name } => return Some(vec![name.clone()]),
            Statement::ShowCatalogs => crate::connectors::SHOW_CATALOGS_COLUMNS,
            Statement::RepairTable { .. } | Statement::Analyze { .. } => RESULT_COLUMNS,
            Statement::Crawler(crawler) => crawler.result_columns()?,
            _ => return None,
        };
        Some(columns.iter().map(|c| c.to_string()).collect())
    }
}

pub(crate) async fn execute(session: &Session, statement: Statement) -> Result<Output> {
    let metastore = session.engine().metastore();
    match statement {
        Statement::ShowDatabases { like } => {
            let rows = metastore
                .list_databases()
                .await?
                .into_iter()
                .filter(|db| like.as_deref().is_none_or(|p| matches_pattern(p, &db.name)))
                .map(|db| vec![db.name])
                .collect();
            Output::text_rows(DATABASES_COLUMNS, rows)
        }
        Statement::ShowTables { database, like } => {
            let database = database.unwrap_or_else(|| session.current_database());
            let rows = metastore
                .list_tables(&database)
                .await?
                .into_iter()
                .filter(|t| like.as_deref().is_none_or(|p| matches_pattern(p, &t.name)))
                .map(|t| vec![t.name])
                .collect();
            Output::text_rows(TABLES_COLUMNS, rows)
        }
        Statement::ShowPartitions { name } => {
            let table = require_table(session, &name).await?;
            if !table.is_partitioned() {
                return Err(crate::CoordinatorError::Invalid(format!(
                    "table {} is not partitioned",
                    table.qualified_name()
                )));
            }
            let rows = metastore
                .list_partitions(&table.database, &table.name)
                .await?
                .into_iter()
                .map(|p| vec![partition_spec(&table.partition_keys, &p.values)])
                .collect();
            Output::text_rows(PARTITIONS_COLUMNS, rows)
        }
        Statement::Describe { name, formatted } => {
            let table = require_table(session, &name).await?;
            Output::text_rows(DESCRIBE_COLUMNS, describe(&table, formatted))
        }
        Statement::ShowCreateTable { name } => {
            let table = require_table(session, &name).await?;
            Output::text_rows(SHOW_CREATE_COLUMNS, vec![vec![show_create(&table)]])
        }
        other => unreachable!("not a SHOW statement: {other:?}"),
    }
}

fn row(a: impl Into<String>, b: impl Into<String>, c: impl Into<String>) -> Vec<String> {
    vec![a.into(), b.into(), c.into()]
}

fn describe(table: &Table, formatted: bool) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = table
        .columns
        .iter()
        .chain(&table.partition_keys)
        .map(|c| {
            row(
                &c.name,
                c.data_type.to_string(),
                c.comment.clone().unwrap_or_default(),
            )
        })
        .collect();
    if table.is_partitioned() {
        rows.push(row("", "", ""));
        rows.push(row("# Partition Information", "", ""));
        rows.push(row("# col_name", "data_type", "comment"));
        for key in &table.partition_keys {
            rows.push(row(
                &key.name,
                key.data_type.to_string(),
                key.comment.clone().unwrap_or_default(),
            ));
        }
    }
    if !formatted {
        return rows;
    }
    rows.push(row("", "", ""));
    rows.push(row("# Detailed Table Information", "", ""));
    rows.push(row("Database:", &table.database, ""));
    rows.push(row("CreateTime:", &table.created_at, ""));
    rows.push(row("LastUpdateTime:", &table.updated_at, ""));
    rows.push(row("Table Type:", table.table_type.as_hive_str(), ""));
    if table.table_type == TableType::VirtualView {
        rows.push(row(
            "View Original Text:",
            table.view_sql.clone().unwrap_or_default(),
            "",
        ));
        return rows;
    }
    rows.push(row("Location:", &table.storage.location, ""));
    rows.push(row("Table Parameters:", "", ""));
    for (key, value) in &table.properties {
        rows.push(row("", key, value));
    }
    if let Some(stats) = &table.statistics {
        rows.push(row("", "numRows", stats.row_count.to_string()));
        rows.push(row("", "numFiles", stats.file_count.to_string()));
        rows.push(row("", "totalSize", stats.total_bytes.to_string()));
    }
    rows.push(row("", "", ""));
    rows.push(row("# Storage Information", "", ""));
    rows.push(row("SerDe Library:", table.storage.format.serde(), ""));
    rows.push(row("InputFormat:", table.storage.format.input_format(), ""));
    rows.push(row("Storage Desc Params:", "", ""));
    for (key, value) in &table.storage.serde_properties {
        rows.push(row("", key, printable(value)));
    }
    rows
}

/// Control characters (such as Hive's default `\001` delimiter) shown as escapes.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\{:03o}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn sql_string(text: &str) -> String {
    format!("'{}'", printable(text).replace('\'', "\\'"))
}

fn show_create(table: &Table) -> String {
    let name = format!("`{}`.`{}`", table.database, table.name);
    if table.table_type == TableType::VirtualView {
        return format!(
            "CREATE VIEW {name} AS\n{}",
            table.view_sql.clone().unwrap_or_default()
        );
    }
    let column = |c: &quarry_metastore::Column| {
        let comment = c
            .comment
            .as_ref()
            .map(|t| format!(" COMMENT {}", sql_string(t)))
            .unwrap_or_default();
        format!("  `{}` {}{comment}", c.name, c.data_type)
    };
    let external = if table.table_type == TableType::External {
        "EXTERNAL "
    } else {
        ""
    };
    let mut out = format!(
        "CREATE {external}TABLE {name}(\n{})",
        table
            .columns
            .iter()
            .map(column)
            .collect::<Vec<_>>()
            .join(",\n")
    );
    if let Some(comment) = table.properties.get("comment") {
        out.push_str(&format!("\nCOMMENT {}", sql_string(comment)));
    }
    if table.is_partitioned() {
        out.push_str(&format!(
            "\nPARTITIONED BY (\n{})",
            table
                .partition_keys
                .iter()
                .map(column)
                .collect::<Vec<_>>()
                .join(",\n")
        ));
    }
    if let Some(delim) = table.storage.serde_properties.get("field.delim") {
        out.push_str(&format!(
            "\nROW FORMAT DELIMITED\n  FIELDS TERMINATED BY {}",
            sql_string(delim)
        ));
        if let Some(null) = table
            .storage
            .serde_properties
            .get("serialization.null.format")
        {
            out.push_str(&format!("\n  NULL DEFINED AS {}", sql_string(null)));
        }
    }
    out.push_str(&format!("\nSTORED AS {}", table.storage.format.keyword()));
    out.push_str(&format!(
        "\nLOCATION\n  {}",
        sql_string(&table.storage.location)
    ));
    let props: Vec<String> = table
        .properties
        .iter()
        .filter(|(k, _)| k.as_str() != "comment")
        .map(|(k, v)| format!("  {}={}", sql_string(k), sql_string(v)))
        .collect();
    if !props.is_empty() {
        out.push_str(&format!("\nTBLPROPERTIES (\n{})", props.join(",\n")));
    }
    out
}

/// Hive's SHOW patterns: `*` matches anything, `|` separates alternatives; SQL's `%` and
/// `_` work too. Case-insensitive.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| {
        glob(
            alt.trim().to_lowercase().as_bytes(),
            name.to_lowercase().as_bytes(),
        )
    })
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*' | b'%', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((b'_', rest)) => !text.is_empty() && glob(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_patterns_follow_hive() {
        assert!(matches_pattern("tp*", "tpch"));
        assert!(matches_pattern("x|tpch", "TPCH"));
        assert!(matches_pattern("%ch", "tpch"));
        assert!(!matches_pattern("tp", "tpch"));
    }
}
