//! SQL cursors of one connection: `DECLARE`, `FETCH`, `MOVE`, `CLOSE`.
//!
//! A cursor keeps its query's stream of batches and hands out the next rows on each
//! FETCH; nothing is read ahead or materialized beyond the batch being sliced. Cursors
//! scan forward only (`FETCH PRIOR`, `BACKWARD`, `ABSOLUTE` are refused).
//!
//! Lifetime: a cursor `WITH HOLD` lives until CLOSE or the end of the connection. One
//! `WITHOUT HOLD` (the default) declared inside a transaction block is closed by its
//! COMMIT or ROLLBACK, as in PostgreSQL; declared outside one (PostgreSQL refuses that),
//! it lives until CLOSE or the end of the connection.
//!
//! `statement_timeout` and cancel requests apply to each FETCH or MOVE, as to any
//! statement, not to the cursor's whole life.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::tokenizer::Token;
use futures::StreamExt;
use quarry_coordinator::CoordinatorError;

use crate::words::{ParseResult, Words};

/// A cursor statement, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CursorStatement {
    Declare {
        name: String,
        binary: bool,
        hold: bool,
        /// The query's text.
        query: String,
    },
    /// `FETCH` (rows returned) or `MOVE` (rows skipped, only counted).
    Fetch {
        name: String,
        count: FetchCount,
        moving: bool,
    },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close { name: Option<String> },
}

/// How many rows a FETCH or MOVE takes, forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FetchCount {
    Rows(u64),
    All,
}

impl FetchCount {
    fn limit(self) -> Option<u64> {
        match self {
            FetchCount::Rows(n) => Some(n),
            FetchCount::All => None,
        }
    }
}

/// Errors of cursor statements, with PostgreSQL's SQLSTATEs (see `errors.rs`).
#[derive(Debug)]
pub(crate) enum CursorError {
    /// 34000 invalid_cursor_name.
    Unknown(String),
    /// 42P03 duplicate_cursor.
    Duplicate(String),
    /// A backward or absolute move (refused as not supported, 0A000).
    ForwardOnly,
}

impl std::fmt::Display for CursorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CursorError::Unknown(name) => write!(f, "cursor \"{name}\" does not exist"),
            CursorError::Duplicate(name) => write!(f, "cursor \"{name}\" already exists"),
            CursorError::ForwardOnly => write!(
                f,
                "cursor can only scan forward: Quarry's cursors do not scroll backward"
            ),
        }
    }
}

/// Whether `sql` starts with one of the cursor statements' keywords (cheap test).
pub(crate) fn is_cursor_statement(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    ["DECLARE", "FETCH", "MOVE", "CLOSE"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

/// Parses DECLARE, FETCH, MOVE or CLOSE.
pub(crate) fn parse(sql: &str) -> Result<CursorStatement, CoordinatorError> {
    let mut words = Words::new(sql)
        .ok_or_else(|| CoordinatorError::Syntax("statement does not tokenize".into()))?;
    parse_words(&mut words)
}

fn parse_words(w: &mut Words<'_>) -> Result<CursorStatement, CoordinatorError> {
    if w.eat_word("DECLARE") {
        let name = w.ident("a cursor name")?;
        let mut binary = false;
        let mut hold = false;
        loop {
            if w.eat_word("BINARY") {
                binary = true;
            } else if w.eat_word("INSENSITIVE") || w.eat_word("ASENSITIVE") || w.eat_word("SCROLL")
            {
            } else if w.eat_word("NO") {
                w.expect_word("SCROLL")?;
            } else {
                break;
            }
        }
        w.expect_word("CURSOR")?;
        if w.eat_word("WITH") {
            w.expect_word("HOLD")?;
            hold = true;
        } else if w.eat_word("WITHOUT") {
            w.expect_word("HOLD")?;
        }
        w.expect_word("FOR")?;
        let query = w.rest();
        if query.is_empty() {
            return Err(CoordinatorError::Syntax(
                "DECLARE ... CURSOR FOR needs a query".into(),
            ));
        }
        return Ok(CursorStatement::Declare {
            name,
            binary,
            hold,
            query,
        });
    }
    if w.eat_word("CLOSE") {
        let name = if w.eat_word("ALL") {
            None
        } else {
            Some(w.ident("a cursor name")?)
        };
        w.expect_end()?;
        return Ok(CursorStatement::Close { name });
    }
    let moving = if w.eat_word("MOVE") {
        true
    } else {
        w.expect_word("FETCH")?;
        false
    };
    let count = direction(w)?;
    if !w.eat_word("FROM") {
        w.eat_word("IN");
    }
    let name = w.ident("a cursor name")?;
    w.expect_end()?;
    Ok(CursorStatement::Fetch {
        name,
        count: count
            .ok_or_else(|| CoordinatorError::Unsupported(CursorError::ForwardOnly.to_string()))?,
        moving,
    })
}

/// The direction of a FETCH/MOVE: `None` for one that goes backward or jumps.
fn direction(w: &mut Words<'_>) -> ParseResult<Option<FetchCount>> {
    let count = |w: &mut Words<'_>| -> ParseResult<Option<FetchCount>> {
        if w.eat_word("ALL") {
            return Ok(Some(FetchCount::All));
        }
        match w.integer() {
            Some(n) if n >= 0 => Ok(Some(FetchCount::Rows(n as u64))),
            Some(_) => Ok(None),
            None => Ok(Some(FetchCount::Rows(1))),
        }
    };
    if matches!(
        w.peek(),
        Some(Token::Number(..) | Token::Minus | Token::Plus)
    ) {
        return count(w);
    }
    let Some(word) = w.peek_word() else {
        return Ok(Some(FetchCount::Rows(1)));
    };
    // A cursor may be named like a direction keyword: it is one only when a name follows.
    let keyword = matches!(
        word.as_str(),
        "NEXT"
            | "PRIOR"
            | "FIRST"
            | "LAST"
            | "ABSOLUTE"
            | "RELATIVE"
            | "ALL"
            | "FORWARD"
            | "BACKWARD"
    );
    if !keyword {
        return Ok(Some(FetchCount::Rows(1)));
    }
    w.advance();
    if w.at_end() {
        return Err(w.unexpected("a cursor name"));
    }
    Ok(match word.as_str() {
        "NEXT" => Some(FetchCount::Rows(1)),
        "ALL" => Some(FetchCount::All),
        "FORWARD" => {
            if matches!(
                w.peek(),
                Some(Token::Number(..) | Token::Minus | Token::Plus)
            ) || w.peek_word().as_deref() == Some("ALL")
            {
                count(w)?
            } else {
                Some(FetchCount::Rows(1))
            }
        }
        "RELATIVE" => match w.integer() {
            Some(n) if n >= 0 => Some(FetchCount::Rows(n as u64)),
            _ => None,
        },
        "ABSOLUTE" => {
            w.integer();
            None
        }
        _ => {
            // PRIOR, FIRST, LAST, BACKWARD [n | ALL]
            if !w.eat_word("ALL") {
                w.integer();
            }
            None
        }
    })
}

/// One open cursor.
pub(crate) struct Cursor {
    pub(crate) schema: SchemaRef,
    pub(crate) binary: bool,
    hold: bool,
    /// Declared inside a transaction block: its end closes a WITHOUT HOLD cursor.
    in_transaction: bool,
    state: Arc<tokio::sync::Mutex<CursorState>>,
}

struct CursorState {
    /// `None` once the query ended (or failed).
    stream: Option<SendableRecordBatchStream>,
    /// Rows of a batch that a FETCH did not take.
    pending: Option<RecordBatch>,
}

/// The cursors of one connection, by name.
#[derive(Default)]
pub(crate) struct Cursors {
    open: Mutex<HashMap<String, Arc<Cursor>>>,
}

impl Cursors {
    pub(crate) fn declare(
        &self,
        name: &str,
        stream: SendableRecordBatchStream,
        binary: bool,
        hold: bool,
        in_transaction: bool,
    ) -> Result<(), CursorError> {
        let mut open = self.open.lock().expect("cursors lock");
        if open.contains_key(name) {
            return Err(CursorError::Duplicate(name.to_string()));
        }
        open.insert(
            name.to_string(),
            Arc::new(Cursor {
                schema: stream.schema(),
                binary,
                hold,
                in_transaction,
                state: Arc::new(tokio::sync::Mutex::new(CursorState {
                    stream: Some(stream),
                    pending: None,
                })),
            }),
        );
        Ok(())
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Cursor>> {
        self.open.lock().expect("cursors lock").get(name).cloned()
    }

    pub(crate) fn require(&self, name: &str) -> Result<Arc<Cursor>, CursorError> {
        self.get(name)
            .ok_or_else(|| CursorError::Unknown(name.to_string()))
    }

    /// CLOSE name (an unknown name is an error) or CLOSE ALL.
    pub(crate) fn close(&self, name: Option<&str>) -> Result<(), CursorError> {
        let mut open = self.open.lock().expect("cursors lock");
        match name {
            None => open.clear(),
            Some(name) => {
                open.remove(name)
                    .ok_or_else(|| CursorError::Unknown(name.to_string()))?;
            }
        }
        Ok(())
    }

    /// The end of a transaction block: its WITHOUT HOLD cursors close.
    pub(crate) fn end_transaction(&self) {
        self.open
            .lock()
            .expect("cursors lock")
            .retain(|_, cursor| cursor.hold || !cursor.in_transaction);
    }
}

impl Cursor {
    /// The next rows, up to `count`, as a stream that takes them from the cursor as it is
    /// read.
    pub(crate) fn fetch(self: &Arc<Self>, count: FetchCount) -> SendableRecordBatchStream {
        let state = Arc::clone(&self.state);
        let rows =
            futures::stream::unfold((state, count.limit()), |(state, remaining)| async move {
                if remaining == Some(0) {
                    return None;
                }
                let batch = next_rows(&state, remaining).await?;
                let taken = batch.as_ref().map_or(0, |b| b.num_rows() as u64);
                let remaining = match &batch {
                    Ok(_) => remaining.map(|r| r - taken),
                    Err(_) => Some(0),
                };
                Some((batch, (state, remaining)))
            });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            rows,
        ))
    }
}

/// Takes up to `limit` rows (a batch or a slice of one) from the cursor.
async fn next_rows(
    state: &tokio::sync::Mutex<CursorState>,
    limit: Option<u64>,
) -> Option<Result<RecordBatch, DataFusionError>> {
    let mut state = state.lock().await;
    let batch = loop {
        if let Some(batch) = state.pending.take() {
            break batch;
        }
        match state.stream.as_mut()?.next().await {
            Some(Ok(batch)) if batch.num_rows() == 0 => continue,
            Some(Ok(batch)) => break batch,
            Some(Err(e)) => {
                state.stream = None;
                return Some(Err(e));
            }
            None => {
                state.stream = None;
                return None;
            }
        }
    };
    let take = limit.map_or(batch.num_rows(), |l| {
        usize::try_from(l)
            .unwrap_or(usize::MAX)
            .min(batch.num_rows())
    });
    if take < batch.num_rows() {
        state.pending = Some(batch.slice(take, batch.num_rows() - take));
    }
    Some(Ok(batch.slice(0, take)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(sql: &str) -> (String, FetchCount, bool) {
        match parse(sql).unwrap() {
            CursorStatement::Fetch {
                name,
                count,
                moving,
            } => (name, count, moving),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fetch_and_move_forms() {
        assert_eq!(fetch("FETCH c"), ("c".into(), FetchCount::Rows(1), false));
        assert_eq!(
            fetch("fetch forward 100 from \"My Cursor\""),
            ("My Cursor".into(), FetchCount::Rows(100), false)
        );
        assert_eq!(
            fetch("FETCH 7 IN c;"),
            ("c".into(), FetchCount::Rows(7), false)
        );
        assert_eq!(
            fetch("FETCH ALL FROM c"),
            ("c".into(), FetchCount::All, false)
        );
        assert_eq!(
            fetch("FETCH FORWARD ALL c"),
            ("c".into(), FetchCount::All, false)
        );
        assert_eq!(
            fetch("FETCH NEXT FROM next"),
            ("next".into(), FetchCount::Rows(1), false)
        );
        assert_eq!(
            fetch("MOVE 5 FROM c"),
            ("c".into(), FetchCount::Rows(5), true)
        );
        // psqlODBC's declare/fetch mode, which Tableau's PostgreSQL connection uses.
        assert_eq!(
            fetch("fetch 100 in \"SQL_CUR0x5581\""),
            ("SQL_CUR0x5581".into(), FetchCount::Rows(100), false)
        );
        assert!(
            parse("FETCH BACKWARD 2 FROM c")
                .unwrap_err()
                .user_message()
                .contains("only scan forward")
        );
        assert!(parse("FETCH PRIOR FROM c").is_err());
    }

    #[test]
    fn declare_keeps_the_query_text() {
        assert_eq!(
            parse("DECLARE c BINARY NO SCROLL CURSOR WITH HOLD FOR SELECT 'a;b' FROM t;").unwrap(),
            CursorStatement::Declare {
                name: "c".into(),
                binary: true,
                hold: true,
                query: "SELECT 'a;b' FROM t".into(),
            }
        );
        assert_eq!(
            parse("CLOSE ALL").unwrap(),
            CursorStatement::Close { name: None }
        );
        assert!(is_cursor_statement("  fetch 1 from c"));
        assert!(!is_cursor_statement("SELECT 1"));
    }
}
