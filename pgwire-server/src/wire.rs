//! What a connection prepares: a session statement, or one the wire front end runs itself
//! because its result is a protocol matter (`COPY ... TO STDOUT`, cursors).

use quarry_coordinator::{CoordinatorError, Prepared, Session};

use crate::copy::{self, CopyOptions};
use crate::cursors::{self, CursorStatement};

/// A statement as pgwire's portal store keeps it.
#[derive(Debug, Clone)]
pub(crate) enum WireStatement {
    /// Anything the session runs (queries, Quarry's statements, SET, ...).
    Session(Prepared),
    /// `COPY ... TO STDOUT`: the query, planned like any other ($n parameters included).
    Copy {
        query: Prepared,
        options: CopyOptions,
    },
    /// `DECLARE name CURSOR FOR query`.
    Declare {
        name: String,
        binary: bool,
        hold: bool,
        query: Prepared,
    },
    /// `FETCH`, `MOVE`, `CLOSE`.
    Cursor(CursorStatement),
}

/// Whether the wire front end runs `sql` itself (a cheap look at its first word).
pub(crate) fn is_wire_statement(sql: &str) -> bool {
    copy::is_copy(sql) || cursors::is_cursor_statement(sql)
}

/// Parses and plans one statement.
pub(crate) async fn prepare(
    session: &Session,
    sql: &str,
) -> Result<WireStatement, CoordinatorError> {
    if copy::is_copy(sql) {
        let statement = copy::parse(sql)?;
        return Ok(WireStatement::Copy {
            query: session.prepare(&statement.query).await?,
            options: statement.options,
        });
    }
    if cursors::is_cursor_statement(sql) {
        return Ok(match cursors::parse(sql)? {
            CursorStatement::Declare {
                name,
                binary,
                hold,
                query,
            } => WireStatement::Declare {
                name,
                binary,
                hold,
                query: session.prepare(&query).await?,
            },
            other => WireStatement::Cursor(other),
        });
    }
    Ok(WireStatement::Session(session.prepare(sql).await?))
}
