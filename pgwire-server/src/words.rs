//! A small reader over a statement's tokens, for the statements the wire front end owns
//! (`COPY ... TO STDOUT`, `DECLARE`/`FETCH`/`MOVE`/`CLOSE`): their grammar is a few
//! keywords around a query, whose text is handed on unchanged.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// A syntax error in one of these statements (SQLSTATE 42601).
#[derive(Debug)]
pub(crate) struct SyntaxError(pub(crate) String);

pub(crate) type ParseResult<T> = Result<T, SyntaxError>;

impl From<SyntaxError> for quarry_coordinator::CoordinatorError {
    fn from(SyntaxError(message): SyntaxError) -> Self {
        quarry_coordinator::CoordinatorError::Syntax(message)
    }
}

pub(crate) struct Words<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

impl<'a> Words<'a> {
    /// `None` when the text does not tokenize (then it is not ours to report).
    pub(crate) fn new(sql: &'a str) -> Option<Self> {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .ok()?
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Some(Self {
            sql,
            tokens,
            pos: 0,
        })
    }

    pub(crate) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    /// The next token as an upper-case keyword (unquoted words only).
    pub(crate) fn peek_word(&self) -> Option<String> {
        match self.peek() {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    pub(crate) fn advance(&mut self) {
        self.pos += 1;
    }

    pub(crate) fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect_word(&mut self, word: &str) -> ParseResult<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.unexpected(word))
        }
    }

    pub(crate) fn expect(&mut self, token: &Token) -> ParseResult<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("\"{token}\"")))
        }
    }

    pub(crate) fn unexpected(&self, expected: &str) -> SyntaxError {
        let found = match self.peek() {
            Some(Token::EOF) | None => "the end of the statement".to_string(),
            Some(token) => format!("\"{token}\""),
        };
        SyntaxError(format!("expected {expected} but found {found}"))
    }

    pub(crate) fn at_end(&mut self) -> bool {
        while self.eat(&Token::SemiColon) {}
        matches!(self.peek(), None | Some(Token::EOF))
    }

    pub(crate) fn expect_end(&mut self) -> ParseResult<()> {
        if self.at_end() {
            Ok(())
        } else {
            Err(SyntaxError(format!(
                "unexpected \"{}\" at the end of the statement",
                self.peek().map(ToString::to_string).unwrap_or_default()
            )))
        }
    }

    /// An identifier as PostgreSQL folds it: unquoted in lower case, quoted as written.
    pub(crate) fn ident(&mut self, what: &str) -> ParseResult<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let name = if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_lowercase()
                };
                self.pos += 1;
                Ok(name)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// A possibly qualified name, its parts joined with `.` (quoted parts re-quoted).
    pub(crate) fn object_name(&mut self) -> ParseResult<String> {
        let mut parts = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Word(w)) => {
                    parts.push(match w.quote_style {
                        Some(_) => format!("\"{}\"", w.value.replace('"', "\"\"")),
                        None => w.value.clone(),
                    });
                    self.pos += 1;
                }
                _ => return Err(self.unexpected("a table name")),
            }
            if !self.eat(&Token::Period) {
                return Ok(parts.join("."));
            }
        }
    }

    /// A string literal (`'...'` or `E'...'`), unescaped.
    pub(crate) fn string(&mut self, what: &str) -> ParseResult<String> {
        match self.peek() {
            Some(Token::SingleQuotedString(s) | Token::EscapedStringLiteral(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// A signed integer.
    pub(crate) fn integer(&mut self) -> Option<i64> {
        let negative = self.eat(&Token::Minus);
        if !negative {
            self.eat(&Token::Plus);
        }
        match self.peek() {
            Some(Token::Number(n, _)) => {
                let n: i64 = n.parse().ok()?;
                self.pos += 1;
                Some(if negative { -n } else { n })
            }
            _ => None,
        }
    }

    /// The text from the current token to the end, without a trailing `;`; consumes it.
    pub(crate) fn rest(&mut self) -> String {
        let start = self.offset_of(self.pos);
        self.pos = self.tokens.len();
        self.sql[start..]
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_string()
    }

    /// After an opening parenthesis: the text up to its closing one, which is consumed.
    pub(crate) fn parenthesized(&mut self) -> ParseResult<String> {
        let start = self.offset_of(self.pos);
        let mut depth = 1usize;
        while let Some(token) = self.peek() {
            match token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        let end = self.offset_of(self.pos);
                        self.pos += 1;
                        return Ok(self.sql[start..end].trim().to_string());
                    }
                }
                Token::EOF => break,
                _ => {}
            }
            self.pos += 1;
        }
        Err(SyntaxError("a \"(\" is not closed".into()))
    }

    /// Byte offset in the text where token `index` starts.
    fn offset_of(&self, index: usize) -> usize {
        let Some(token) = self.tokens.get(index) else {
            return self.sql.len();
        };
        if token.token == Token::EOF {
            return self.sql.len();
        }
        quarry_coordinator::front::byte_offset(self.sql, token.span.start)
    }
}
