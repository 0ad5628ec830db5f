//! Quarry's front parser: Hive DDL and utility statements.
//!
//! Every statement is offered here first; what this parser does not own (queries, `SET`,
//! `EXPLAIN`, ...) returns `None` and goes to DataFusion with the PostgreSQL dialect.
//! Names are case-insensitive, as in Hive: they are stored in lower case.

use std::collections::BTreeMap;

use datafusion::sql::sqlparser::dialect::HiveDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::crawler_statements::CrawlerStatement;
use crate::{CoordinatorError, Result};

/// Tag of `ROLLBACK TO SAVEPOINT`, which (unlike ROLLBACK) does not end a transaction.
pub const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT";

/// A possibly qualified name: `t`, `db.t` or `catalog.db.t`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub catalog: Option<String>,
    pub database: Option<String>,
    pub name: String,
}

/// A column in DDL: name, Hive type text and comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: String,
    pub comment: Option<String>,
}

/// `CREATE [EXTERNAL] TABLE ...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateTable {
    pub name: Option<ObjectName>,
    pub external: bool,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnDef>,
    pub comment: Option<String>,
    pub partitioned_by: Vec<ColumnDef>,
    pub field_delimiter: Option<String>,
    pub escape: Option<String>,
    pub null_format: Option<String>,
    pub serde_properties: BTreeMap<String, String>,
    pub stored_as: Option<String>,
    pub location: Option<String>,
    pub properties: BTreeMap<String, String>,
}

/// A partition spec: `(k1='v1', k2=2)`, keys lower-cased, values as text.
pub type PartitionSpec = Vec<(String, String)>;

/// A password as typed in `CREATE/ALTER USER`: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The statements Quarry's front parser owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        comment: Option<String>,
        location: Option<String>,
        properties: BTreeMap<String, String>,
    },
    DropDatabase {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    ShowDatabases {
        like: Option<String>,
    },
    ShowTables {
        database: Option<String>,
        like: Option<String>,
    },
    Use {
        database: String,
    },
    CreateTable(CreateTable),
    DropTable {
        name: ObjectName,
        if_exists: bool,
        view: bool,
    },
    CreateView {
        name: ObjectName,
        or_replace: bool,
        if_not_exists: bool,
        columns: Vec<String>,
        query: String,
    },
    Describe {
        name: ObjectName,
        formatted: bool,
    },
    ShowCreateTable {
        name: ObjectName,
    },
    ShowPartitions {
        name: ObjectName,
    },
    AddPartitions {
        table: ObjectName,
        if_not_exists: bool,
        partitions: Vec<(PartitionSpec, Option<String>)>,
    },
    DropPartitions {
        table: ObjectName,
        if_exists: bool,
        partitions: Vec<PartitionSpec>,
    },
    RepairTable {
        table: ObjectName,
    },
    Analyze {
        table: ObjectName,
    },
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE: accepted for clients that send them;
    /// Quarry's reads are not transactional. Holds the command tag.
    Transaction(&'static str),
    /// `SET name = value` for a client setting outside DataFusion's namespaces
    /// (`application_name`, `extra_float_digits`, ...): kept in the session.
    SetVariable {
        name: String,
        value: String,
    },
    /// `SHOW name` of such a setting.
    ShowVariable {
        name: String,
    },
    /// `CREATE/RUN/SHOW/DROP CRAWLER(S)`, parsed in [`crate::crawler_statements`].
    Crawler(CrawlerStatement),
    /// `CREATE CATALOG [IF NOT EXISTS] name USING connector WITH (key = 'value', ...)`.
    CreateCatalog {
        name: String,
        connector: String,
        if_not_exists: bool,
        options: BTreeMap<String, String>,
    },
    DropCatalog {
        name: String,
        if_exists: bool,
    },
    ShowCatalogs,
    /// `CREATE USER name [WITH] PASSWORD '...' [SUPERUSER | NOSUPERUSER]`.
    CreateUser {
        name: String,
        password: Password,
        admin: bool,
    },
    /// `ALTER USER name [WITH] [PASSWORD '...'] [SUPERUSER | NOSUPERUSER]`.
    AlterUser {
        name: String,
        password: Option<Password>,
        admin: Option<bool>,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
}

/// `sql` as it may be logged or shown: the string after `PASSWORD` (CREATE/ALTER USER) or
/// `password =` (CREATE CATALOG options) becomes `'***'`.
pub fn redact_passwords(sql: &str) -> std::borrow::Cow<'_, str> {
    let Ok(tokens) = Tokenizer::new(&HiveDialect {}, sql)
        .with_unescape(false)
        .tokenize_with_location()
    else {
        // Not tokenizable (an unterminated quote): keep nothing after a password keyword.
        return match sql.to_ascii_uppercase().find("PASSWORD") {
            Some(at) => format!("{} ***", &sql[..at + "PASSWORD".len()]).into(),
            None => sql.into(),
        };
    };
    let words: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let mut secrets = Vec::new();
    for (i, word) in words.iter().enumerate() {
        if !matches!(&word.token, Token::Word(w) if w.value.eq_ignore_ascii_case("PASSWORD")) {
            continue;
        }
        let mut j = i + 1;
        if matches!(words.get(j).map(|t| &t.token), Some(Token::Eq)) {
            j += 1;
        }
        if let Some(literal) = words.get(j)
            && matches!(
                literal.token,
                Token::SingleQuotedString(_) | Token::DoubleQuotedString(_)
            )
        {
            secrets.push((
                byte_offset(sql, literal.span.start),
                byte_offset(sql, literal.span.end),
            ));
        }
    }
    if secrets.is_empty() {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for (start, end) in secrets {
        out.push_str(&sql[last..start]);
        out.push_str("'***'");
        last = end;
    }
    out.push_str(&sql[last..]);
    out.into()
}

/// Byte offset in `sql` of a tokenizer location (1-based line and character column).
pub fn byte_offset(sql: &str, location: Location) -> usize {
    let (line, column) = (location.line as usize, location.column as usize);
    let line_start: usize = sql
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let rest = &sql[line_start..];
    line_start
        + rest
            .char_indices()
            .nth(column.saturating_sub(1))
            .map(|(i, _)| i)
            .unwrap_or(rest.len())
}

/// Parses one statement if it is Quarry's; `Ok(None)` hands it to DataFusion.
pub fn parse(sql: &str) -> Result<Option<Statement>> {
    let tokens = match Tokenizer::new(&HiveDialect {}, sql)
        .with_unescape(false)
        .tokenize_with_location()
    {
        Ok(tokens) => tokens,
        // Not ours to report: DataFusion's parser gives the better message.
        Err(_) => return Ok(None),
    };
    let mut p = Parser::new(sql, tokens);
    let statement = match p.peek_word().as_deref() {
        Some("CREATE") => p.parse_create()?,
        Some("DROP") => p.parse_drop()?,
        Some("SHOW") => p.parse_show()?,
        Some("USE") => {
            p.next();
            Some(Statement::Use {
                database: p.ident("database name")?,
            })
        }
        Some("DESCRIBE" | "DESC") => p.parse_describe()?,
        Some("ALTER") => p.parse_alter()?,
        Some("MSCK") => {
            p.next();
            p.expect_words(&["REPAIR", "TABLE"])?;
            Some(Statement::RepairTable {
                table: p.object_name()?,
            })
        }
        Some("BEGIN" | "START") => {
            p.next();
            p.pos = p.tokens.len();
            Some(Statement::Transaction("BEGIN"))
        }
        Some("COMMIT" | "END") => {
            p.next();
            p.pos = p.tokens.len();
            Some(Statement::Transaction("COMMIT"))
        }
        Some("ROLLBACK" | "ABORT") => {
            p.next();
            let to_savepoint = p.peek_word().as_deref() == Some("TO");
            p.pos = p.tokens.len();
            Some(Statement::Transaction(if to_savepoint {
                ROLLBACK_TO_SAVEPOINT
            } else {
                "ROLLBACK"
            }))
        }
        Some("SAVEPOINT") => {
            p.pos = p.tokens.len();
            Some(Statement::Transaction("SAVEPOINT"))
        }
        Some("RELEASE") => {
            p.pos = p.tokens.len();
            Some(Statement::Transaction("RELEASE"))
        }
        Some("SET") => p.parse_set()?,
        Some("RUN") if p.peek_word_at(1).as_deref() == Some("CRAWLER") => {
            p.pos += 2;
            Some(Statement::Crawler(CrawlerStatement::Run {
                name: p.ident("crawler name")?,
            }))
        }
        Some("ANALYZE") => {
            p.next();
            p.expect_word("TABLE")?;
            let table = p.object_name()?;
            p.expect_words(&["COMPUTE", "STATISTICS"])?;
            // `FOR COLUMNS` is accepted: statistics are always computed for every column.
            if p.eat_word("FOR") {
                p.expect_word("COLUMNS")?;
            }
            Some(Statement::Analyze { table })
        }
        _ => None,
    };
    if statement.is_some() {
        p.expect_end()?;
    }
    Ok(statement)
}

struct Parser<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    pos: usize,
}

fn syntax(message: impl Into<String>) -> CoordinatorError {
    CoordinatorError::Syntax(message.into())
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str, tokens: Vec<TokenWithSpan>) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Self {
            sql,
            tokens,
            pos: 0,
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|t| &t.token)
    }

    fn peek_word(&self) -> Option<String> {
        self.peek_word_at(0)
    }

    fn peek_word_at(&self, offset: usize) -> Option<String> {
        match self.tokens.get(self.pos + offset).map(|t| &t.token) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).map(|t| t.token.clone());
        self.pos += 1;
        token
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            Some(token) => format!("\"{token}\""),
            None => "the end of the statement".to_string(),
        }
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word().as_deref() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_words(&mut self, words: &[&str]) -> bool {
        let matches = words
            .iter()
            .enumerate()
            .all(|(i, w)| self.peek_word_at(i).as_deref() == Some(*w));
        if matches {
            self.pos += words.len();
        }
        matches
    }

    fn expect_word(&mut self, word: &str) -> Result<()> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(syntax(format!(
                "expected {word} but found {}",
                self.describe_next()
            )))
        }
    }

    fn expect_words(&mut self, words: &[&str]) -> Result<()> {
        words.iter().try_for_each(|w| self.expect_word(w))
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(syntax(format!(
                "expected \"{token}\" but found {}",
                self.describe_next()
            )))
        }
    }

    fn expect_end(&mut self) -> Result<()> {
        while self.eat(&Token::SemiColon) {}
        match self.peek() {
            None | Some(Token::EOF) => Ok(()),
            Some(_) => Err(syntax(format!(
                "unexpected {} at the end of the statement",
                self.describe_next()
            ))),
        }
    }

    fn ident(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let value = w.value.to_lowercase();
                self.pos += 1;
                Ok(value)
            }
            _ => Err(syntax(format!(
                "expected a {what} but found {}",
                self.describe_next()
            ))),
        }
    }

    fn object_name(&mut self) -> Result<ObjectName> {
        let mut parts = vec![self.ident("name")?];
        while self.eat(&Token::Period) {
            parts.push(self.ident("name")?);
        }
        let mut parts = parts.into_iter();
        Ok(match parts.len() {
            1 => ObjectName {
                catalog: None,
                database: None,
                name: parts.next().unwrap_or_default(),
            },
            2 => ObjectName {
                catalog: None,
                database: parts.next(),
                name: parts.next().unwrap_or_default(),
            },
            3 => ObjectName {
                catalog: parts.next(),
                database: parts.next(),
                name: parts.next().unwrap_or_default(),
            },
            n => return Err(syntax(format!("a name has at most three parts, got {n}"))),
        })
    }

    fn string(&mut self, what: &str) -> Result<String> {
        match self.peek() {
            Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => {
                let value = unescape_hive(s);
                self.pos += 1;
                Ok(value)
            }
            _ => Err(syntax(format!(
                "expected {what} as a quoted string but found {}",
                self.describe_next()
            ))),
        }
    }

    fn if_not_exists(&mut self) -> Result<bool> {
        if self.eat_word("IF") {
            self.expect_words(&["NOT", "EXISTS"])?;
            return Ok(true);
        }
        Ok(false)
    }

    fn if_exists(&mut self) -> bool {
        self.eat_words(&["IF", "EXISTS"])
    }

    /// `('k'='v', ...)`.
    fn properties(&mut self) -> Result<BTreeMap<String, String>> {
        self.expect(&Token::LParen)?;
        let mut props = BTreeMap::new();
        if self.eat(&Token::RParen) {
            return Ok(props);
        }
        loop {
            let key = self.string("a property name")?;
            self.expect(&Token::Eq)?;
            let value = self.string("a property value")?;
            props.insert(key, value);
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(props)
    }

    /// Byte offset in the SQL text where the current token starts.
    fn offset_of_current(&self) -> usize {
        match self.tokens.get(self.pos) {
            Some(token) => byte_offset(self.sql, token.span.start),
            None => self.sql.len(),
        }
    }

    fn parse_create(&mut self) -> Result<Option<Statement>> {
        self.next();
        if self.eat_word("USER") {
            let name = self.ident("user name")?;
            let (password, admin) = self.user_options()?;
            let Some(password) = password else {
                return Err(syntax(format!("CREATE USER {name} needs a PASSWORD '...'")));
            };
            return Ok(Some(Statement::CreateUser {
                name,
                password,
                admin: admin.unwrap_or(false),
            }));
        }
        if self.eat_word("CATALOG") {
            return self.parse_create_catalog().map(Some);
        }
        if self.eat_word("DATABASE") || self.eat_word("SCHEMA") {
            return self.parse_create_database().map(Some);
        }
        let or_replace = self.eat_words(&["OR", "REPLACE"]);
        if self.eat_word("CRAWLER") {
            return self.parse_create_crawler(or_replace).map(Some);
        }
        if self.eat_word("VIEW") {
            return self.parse_create_view(or_replace).map(Some);
        }
        if or_replace {
            return Ok(None);
        }
        let external = self.eat_word("EXTERNAL");
        if !self.eat_word("TABLE") {
            if external {
                return Err(syntax(format!(
                    "expected TABLE after CREATE EXTERNAL but found {}",
                    self.describe_next()
                )));
            }
            return Ok(None);
        }
        self.parse_create_table(external).map(Some)
    }

    fn parse_create_catalog(&mut self) -> Result<Statement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.ident("catalog name")?;
        self.expect_word("USING")?;
        let connector = self.ident("connector name (postgres, mysql)")?;
        let mut options = BTreeMap::new();
        for (key, value) in self.with_options()? {
            if options.insert(key.clone(), value).is_some() {
                return Err(syntax(format!("option \"{key}\" is given twice")));
            }
        }
        Ok(Statement::CreateCatalog {
            name,
            connector,
            if_not_exists,
            options,
        })
    }

    /// `[WITH] [PASSWORD '...'] [SUPERUSER | NOSUPERUSER]` (any order) of CREATE/ALTER USER.
    /// Errors never quote a string literal: it may be (part of) a password.
    fn user_options(&mut self) -> Result<(Option<Password>, Option<bool>)> {
        self.eat_word("WITH");
        let (mut password, mut admin) = (None, None);
        loop {
            if self.eat_word("PASSWORD") {
                match self.peek() {
                    Some(Token::SingleQuotedString(text)) => {
                        password = Some(Password(text.replace("''", "'")));
                        self.pos += 1;
                    }
                    _ => return Err(syntax("expected the password as a quoted string")),
                }
            } else if self.eat_word("SUPERUSER") {
                admin = Some(true);
            } else if self.eat_word("NOSUPERUSER") {
                admin = Some(false);
            } else {
                break;
            }
        }
        while self.eat(&Token::SemiColon) {}
        match self.peek() {
            None | Some(Token::EOF) => Ok((password, admin)),
            Some(_) => Err(syntax(
                "unexpected text in a user statement; expected PASSWORD '...', SUPERUSER or NOSUPERUSER",
            )),
        }
    }

    /// `[WITH (key = value, ...)]` of CREATE CATALOG and CREATE CRAWLER, in order.
    fn with_options(&mut self) -> Result<Vec<(String, String)>> {
        let mut options = Vec::new();
        if !self.eat_word("WITH") {
            return Ok(options);
        }
        self.expect(&Token::LParen)?;
        loop {
            let key = self.ident("option name")?;
            self.expect(&Token::Eq)?;
            options.push((key, self.sql_value("an option value")?));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(options)
    }

    /// A standard SQL string (`''` is a quote, a backslash is itself), a number or a bare
    /// word: passwords and patterns arrive exactly as typed.
    fn sql_value(&mut self, what: &str) -> Result<String> {
        let value = match self.peek() {
            Some(Token::SingleQuotedString(text)) => text.replace("''", "'"),
            Some(Token::Number(n, _)) => n.clone(),
            Some(Token::Word(w)) if w.quote_style.is_none() => w.value.clone(),
            _ => {
                return Err(syntax(format!(
                    "expected {what} as a quoted string or number but found {}",
                    self.describe_next()
                )));
            }
        };
        self.pos += 1;
        Ok(value)
    }

    /// `CREATE [OR REPLACE] CRAWLER [IF NOT EXISTS] c ON 'location' INTO DATABASE db
    /// [WITH (...)]`, after `CRAWLER`.
    fn parse_create_crawler(&mut self, or_replace: bool) -> Result<Statement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.ident("crawler name")?;
        self.expect_word("ON")?;
        let location = self.sql_value("the location")?;
        self.expect_words(&["INTO", "DATABASE"])?;
        let database = self.ident("database name")?;
        let options = self.with_options()?;
        Ok(Statement::Crawler(CrawlerStatement::Create {
            name,
            location,
            database,
            or_replace,
            if_not_exists,
            options,
        }))
    }

    fn parse_create_database(&mut self) -> Result<Statement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.ident("database name")?;
        let (mut comment, mut location, mut properties) = (None, None, BTreeMap::new());
        loop {
            if self.eat_word("COMMENT") {
                comment = Some(self.string("a comment")?);
            } else if self.eat_word("LOCATION") {
                location = Some(self.string("a location")?);
            } else if self.eat_words(&["WITH", "DBPROPERTIES"]) {
                properties = self.properties()?;
            } else {
                break;
            }
        }
        Ok(Statement::CreateDatabase {
            name,
            if_not_exists,
            comment,
            location,
            properties,
        })
    }

    fn parse_create_view(&mut self, or_replace: bool) -> Result<Statement> {
        let if_not_exists = self.if_not_exists()?;
        let name = self.object_name()?;
        let mut columns = Vec::new();
        if self.eat(&Token::LParen) {
            loop {
                columns.push(self.ident("column name")?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.expect(&Token::RParen)?;
        }
        self.expect_word("AS")?;
        let start = self.offset_of_current();
        let query = self.sql[start..]
            .trim()
            .trim_end_matches(';')
            .trim()
            .to_string();
        if query.is_empty() {
            return Err(syntax("CREATE VIEW needs a query after AS"));
        }
        self.pos = self.tokens.len();
        Ok(Statement::CreateView {
            name,
            or_replace,
            if_not_exists,
            columns,
            query,
        })
    }

    fn column_defs(&mut self) -> Result<Vec<ColumnDef>> {
        self.expect(&Token::LParen)?;
        let mut columns = Vec::new();
        loop {
            let name = self.ident("column name")?;
            let data_type = self.type_text()?;
            if data_type.is_empty() {
                return Err(syntax(format!("column \"{name}\" needs a type")));
            }
            let comment = if self.eat_word("COMMENT") {
                Some(self.string("a comment")?)
            } else {
                None
            };
            columns.push(ColumnDef {
                name,
                data_type,
                comment,
            });
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(columns)
    }

    /// The text of a column type: tokens up to a top-level `,`, `)` or COMMENT.
    fn type_text(&mut self) -> Result<String> {
        let (mut parens, mut angles) = (0i32, 0i32);
        let mut text = String::new();
        let mut after_word = false;
        while let Some(token) = self.peek() {
            match token {
                Token::Comma | Token::RParen if parens == 0 && angles == 0 => break,
                Token::Word(w)
                    if parens == 0 && angles == 0 && w.value.eq_ignore_ascii_case("COMMENT") =>
                {
                    break;
                }
                Token::LParen => parens += 1,
                Token::RParen => parens -= 1,
                Token::Lt => angles += 1,
                Token::Gt => angles -= 1,
                Token::ShiftRight => angles -= 2,
                Token::EOF => break,
                _ => {}
            }
            let is_word = matches!(token, Token::Word(_));
            if is_word && after_word {
                text.push(' ');
            }
            after_word = is_word;
            text.push_str(&token.to_string());
            self.pos += 1;
        }
        Ok(text.trim().to_string())
    }

    fn parse_create_table(&mut self, external: bool) -> Result<Statement> {
        let mut ct = CreateTable {
            external,
            if_not_exists: self.if_not_exists()?,
            ..Default::default()
        };
        ct.name = Some(self.object_name()?);
        if self.peek() == Some(&Token::LParen) {
            ct.columns = self.column_defs()?;
        }
        loop {
            if self.eat_word("COMMENT") {
                ct.comment = Some(self.string("a comment")?);
            } else if self.eat_words(&["PARTITIONED", "BY"]) {
                ct.partitioned_by = self.column_defs()?;
            } else if self.eat_words(&["ROW", "FORMAT"]) {
                self.parse_row_format(&mut ct)?;
            } else if self.eat_words(&["STORED", "AS"]) {
                ct.stored_as = Some(self.ident("file format")?.to_ascii_uppercase());
            } else if self.eat_word("LOCATION") {
                ct.location = Some(self.string("a location")?);
            } else if self.eat_word("TBLPROPERTIES") {
                ct.properties = self.properties()?;
            } else if self.eat_word("AS") {
                return Err(CoordinatorError::Unsupported(
                    "CREATE TABLE ... AS SELECT is not supported yet".into(),
                ));
            } else {
                break;
            }
        }
        if ct.columns.is_empty() {
            return Err(syntax("CREATE TABLE needs a column list"));
        }
        Ok(Statement::CreateTable(ct))
    }

    fn parse_row_format(&mut self, ct: &mut CreateTable) -> Result<()> {
        if self.eat_word("SERDE") {
            let serde = self.string("a serde class")?;
            ct.serde_properties
                .insert("serialization.lib".into(), serde);
            if self.eat_words(&["WITH", "SERDEPROPERTIES"]) {
                ct.serde_properties.extend(self.properties()?);
            }
            return Ok(());
        }
        self.expect_word("DELIMITED")?;
        loop {
            if self.eat_words(&["FIELDS", "TERMINATED", "BY"]) {
                ct.field_delimiter = Some(self.string("a delimiter")?);
                if self.eat_words(&["ESCAPED", "BY"]) {
                    ct.escape = Some(self.string("an escape character")?);
                }
            } else if self.eat_words(&["LINES", "TERMINATED", "BY"]) {
                let lines = self.string("a line terminator")?;
                if lines != "\n" {
                    return Err(CoordinatorError::Unsupported(
                        "LINES TERMINATED BY supports only '\\n'".into(),
                    ));
                }
            } else if self.eat_words(&["NULL", "DEFINED", "AS"]) {
                ct.null_format = Some(self.string("a NULL marker")?);
            } else if self.eat_words(&["COLLECTION", "ITEMS", "TERMINATED", "BY"])
                || self.eat_words(&["MAP", "KEYS", "TERMINATED", "BY"])
            {
                return Err(CoordinatorError::Unsupported(
                    "collection and map delimiters in text files are not supported".into(),
                ));
            } else {
                return Ok(());
            }
        }
    }

    fn parse_drop(&mut self) -> Result<Option<Statement>> {
        self.next();
        if self.eat_word("USER") {
            let if_exists = self.if_exists();
            return Ok(Some(Statement::DropUser {
                if_exists,
                name: self.ident("user name")?,
            }));
        }
        if self.eat_word("CRAWLER") {
            let if_exists = self.if_exists();
            return Ok(Some(Statement::Crawler(CrawlerStatement::Drop {
                if_exists,
                name: self.ident("crawler name")?,
            })));
        }
        if self.eat_word("CATALOG") {
            let if_exists = self.if_exists();
            return Ok(Some(Statement::DropCatalog {
                if_exists,
                name: self.ident("catalog name")?,
            }));
        }
        if self.eat_word("DATABASE") || self.eat_word("SCHEMA") {
            let if_exists = self.if_exists();
            let name = self.ident("database name")?;
            let cascade = if self.eat_word("CASCADE") {
                true
            } else {
                self.eat_word("RESTRICT");
                false
            };
            return Ok(Some(Statement::DropDatabase {
                name,
                if_exists,
                cascade,
            }));
        }
        let view = if self.eat_word("TABLE") {
            false
        } else if self.eat_word("VIEW") {
            true
        } else {
            return Ok(None);
        };
        let if_exists = self.if_exists();
        let name = self.object_name()?;
        self.eat_word("PURGE");
        Ok(Some(Statement::DropTable {
            name,
            if_exists,
            view,
        }))
    }

    fn like(&mut self) -> Result<Option<String>> {
        if self.eat_word("LIKE") {
            return Ok(Some(self.string("a pattern")?));
        }
        // Hive also takes a bare pattern string.
        if matches!(self.peek(), Some(Token::SingleQuotedString(_))) {
            return Ok(Some(self.string("a pattern")?));
        }
        Ok(None)
    }

    /// `SET [SESSION|LOCAL] name {=|TO} value`, for names outside DataFusion's namespaces.
    fn parse_set(&mut self) -> Result<Option<Statement>> {
        self.next();
        if self.eat_word("SESSION") {
            self.eat_word("CHARACTERISTICS");
        }
        self.eat_word("LOCAL");
        let Some(Token::Word(first)) = self.peek().cloned() else {
            return Ok(None);
        };
        let name = first.value.to_lowercase();
        let is_datafusion = self.tokens.get(self.pos + 1).map(|t| &t.token) == Some(&Token::Period);
        if is_datafusion || name == "time" {
            return Ok(None);
        }
        self.pos += 1;
        if !(self.eat(&Token::Eq) || self.eat_word("TO")) {
            return Ok(None);
        }
        let start = self.offset_of_current();
        let value = self.sql[start..].trim().trim_end_matches(';').trim();
        let value = value.trim_matches('\'').to_string();
        self.pos = self.tokens.len();
        Ok(Some(Statement::SetVariable { name, value }))
    }

    fn parse_show(&mut self) -> Result<Option<Statement>> {
        self.next();
        // PostgreSQL's spelling of `SHOW transaction_isolation` (SQLAlchemy sends it).
        if self.tokens.len() == self.pos + 3
            && self.eat_words(&["TRANSACTION", "ISOLATION", "LEVEL"])
        {
            return Ok(Some(Statement::ShowVariable {
                name: "transaction_isolation".into(),
            }));
        }
        if let Some(Token::Word(w)) = self.peek().cloned()
            && self.tokens.len() == self.pos + 1
            && !w.value.eq_ignore_ascii_case("ALL")
            && !w.value.contains('.')
            && !matches!(
                w.value.to_ascii_uppercase().as_str(),
                "DATABASES" | "SCHEMAS" | "TABLES" | "PARTITIONS" | "CATALOGS" | "CRAWLERS"
            )
        {
            self.pos += 1;
            return Ok(Some(Statement::ShowVariable {
                name: w.value.to_lowercase(),
            }));
        }
        if self.eat_word("CATALOGS") {
            return Ok(Some(Statement::ShowCatalogs));
        }
        if self.eat_word("CRAWLERS") {
            return Ok(Some(Statement::Crawler(CrawlerStatement::Show)));
        }
        if self.eat_word("DATABASES") || self.eat_word("SCHEMAS") {
            return Ok(Some(Statement::ShowDatabases { like: self.like()? }));
        }
        if self.eat_word("TABLES") {
            let database = if self.eat_word("IN") || self.eat_word("FROM") {
                Some(self.ident("database name")?)
            } else {
                None
            };
            return Ok(Some(Statement::ShowTables {
                database,
                like: self.like()?,
            }));
        }
        if self.eat_words(&["CREATE", "TABLE"]) || self.eat_words(&["CREATE", "VIEW"]) {
            return Ok(Some(Statement::ShowCreateTable {
                name: self.object_name()?,
            }));
        }
        if self.eat_word("PARTITIONS") {
            return Ok(Some(Statement::ShowPartitions {
                name: self.object_name()?,
            }));
        }
        Ok(None)
    }

    fn parse_describe(&mut self) -> Result<Option<Statement>> {
        self.next();
        let formatted = self.eat_word("FORMATTED") || self.eat_word("EXTENDED");
        self.eat_word("TABLE");
        Ok(Some(Statement::Describe {
            name: self.object_name()?,
            formatted,
        }))
    }

    fn partition_spec(&mut self) -> Result<PartitionSpec> {
        self.expect(&Token::LParen)?;
        let mut spec = Vec::new();
        loop {
            let key = self.ident("partition key")?;
            self.expect(&Token::Eq)?;
            let value = match self.next() {
                Some(Token::SingleQuotedString(s) | Token::DoubleQuotedString(s)) => {
                    unescape_hive(&s)
                }
                Some(Token::Number(n, _)) => n,
                Some(Token::Minus) => match self.next() {
                    Some(Token::Number(n, _)) => format!("-{n}"),
                    _ => {
                        return Err(syntax(format!(
                            "expected a value for partition key \"{key}\""
                        )));
                    }
                },
                Some(Token::Word(w)) => w.value,
                _ => {
                    return Err(syntax(format!(
                        "expected a value for partition key \"{key}\""
                    )));
                }
            };
            spec.push((key, value));
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect(&Token::RParen)?;
        Ok(spec)
    }

    fn parse_alter(&mut self) -> Result<Option<Statement>> {
        self.next();
        if self.eat_word("USER") {
            let name = self.ident("user name")?;
            let (password, admin) = self.user_options()?;
            if password.is_none() && admin.is_none() {
                return Err(syntax(format!(
                    "ALTER USER {name} needs PASSWORD '...', SUPERUSER or NOSUPERUSER"
                )));
            }
            return Ok(Some(Statement::AlterUser {
                name,
                password,
                admin,
            }));
        }
        if !self.eat_word("TABLE") {
            return Ok(None);
        }
        let table = self.object_name()?;
        if self.eat_word("ADD") {
            let if_not_exists = self.if_not_exists()?;
            let mut partitions = Vec::new();
            while self.eat_word("PARTITION") {
                let spec = self.partition_spec()?;
                let location = if self.eat_word("LOCATION") {
                    Some(self.string("a location")?)
                } else {
                    None
                };
                partitions.push((spec, location));
            }
            if partitions.is_empty() {
                return Err(CoordinatorError::Unsupported(format!(
                    "ALTER TABLE ... ADD supports PARTITION only, found {}",
                    self.describe_next()
                )));
            }
            return Ok(Some(Statement::AddPartitions {
                table,
                if_not_exists,
                partitions,
            }));
        }
        if self.eat_word("DROP") {
            let if_exists = self.if_exists();
            let mut partitions = Vec::new();
            loop {
                self.expect_word("PARTITION")?;
                partitions.push(self.partition_spec()?);
                if !self.eat(&Token::Comma) {
                    break;
                }
            }
            self.eat_word("PURGE");
            return Ok(Some(Statement::DropPartitions {
                table,
                if_exists,
                partitions,
            }));
        }
        if self.eat_words(&["RECOVER", "PARTITIONS"]) {
            return Ok(Some(Statement::RepairTable { table }));
        }
        Err(CoordinatorError::Unsupported(format!(
            "ALTER TABLE supports ADD PARTITION, DROP PARTITION and RECOVER PARTITIONS; found {}",
            self.describe_next()
        )))
    }
}

/// Hive string escapes: `\t`, `\n`, `\\`, `\'`, octal `\001` and `\u0001`.
fn unescape_hive(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('N') => out.push_str("\\N"),
            Some('u') => {
                let hex: String = (0..4).filter_map(|_| chars.next()).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) => out.push(c),
                    None => {
                        out.push_str("\\u");
                        out.push_str(&hex);
                    }
                }
            }
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(v) => {
                            value = value * 8 + v;
                            chars.next();
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).unwrap_or('\u{1}'));
            }
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(sql: &str) -> Statement {
        parse(sql)
            .unwrap()
            .unwrap_or_else(|| panic!("not parsed as Quarry's: {sql}"))
    }

    #[test]
    fn create_external_table_with_every_clause() {
        let sql = "CREATE EXTERNAL TABLE IF NOT EXISTS Sales.Events (\n  id bigint COMMENT 'the id',\n  \
                   tags array<string>, attrs map<string,struct<a:int,b:decimal(10,2)>>)\n\
                   PARTITIONED BY (dt date, region string)\n\
                   ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\001'\n\
                   STORED AS textfile LOCATION 's3://b/events/' TBLPROPERTIES ('skip.header.line.count'='1');";
        let Statement::CreateTable(ct) = parse_ok(sql) else {
            panic!()
        };
        assert!(ct.external && ct.if_not_exists);
        let name = ct.name.unwrap();
        assert_eq!(
            (name.database.as_deref(), name.name.as_str()),
            (Some("sales"), "events")
        );
        assert_eq!(ct.columns[0].comment.as_deref(), Some("the id"));
        assert_eq!(ct.columns[1].data_type, "array<string>");
        assert_eq!(
            ct.columns[2].data_type,
            "map<string,struct<a:int,b:decimal(10,2)>>"
        );
        assert_eq!(ct.partitioned_by.len(), 2);
        assert_eq!(ct.field_delimiter.as_deref(), Some("\u{1}"));
        assert_eq!(ct.stored_as.as_deref(), Some("TEXTFILE"));
        assert_eq!(ct.location.as_deref(), Some("s3://b/events/"));
        assert_eq!(ct.properties["skip.header.line.count"], "1");
    }

    #[test]
    fn catalog_statements() {
        let create = parse_ok(
            "CREATE CATALOG IF NOT EXISTS Sales USING postgres WITH (host = 'db', port = 5432, \
             password = 'it''s a \\secret')",
        );
        let Statement::CreateCatalog {
            name,
            connector,
            if_not_exists,
            options,
        } = create
        else {
            panic!("{create:?}")
        };
        assert_eq!((name.as_str(), connector.as_str()), ("sales", "postgres"));
        assert!(if_not_exists);
        assert_eq!(options["port"], "5432");
        assert_eq!(options["password"], "it's a \\secret");
        assert!(
            parse("CREATE CATALOG c USING mysql WITH (host='a', host='b')")
                .unwrap_err()
                .to_string()
                .contains("\"host\" is given twice")
        );
        assert_eq!(
            parse_ok("DROP CATALOG IF EXISTS c"),
            Statement::DropCatalog {
                name: "c".into(),
                if_exists: true
            }
        );
        assert_eq!(parse_ok("SHOW CATALOGS"), Statement::ShowCatalogs);
    }

    #[test]
    fn view_keeps_its_query_text() {
        let sql = "create or replace view v (a, b) as\n  SELECT x, \"Y\" FROM t WHERE s = 'a;b';";
        let Statement::CreateView {
            query,
            columns,
            or_replace,
            ..
        } = parse_ok(sql)
        else {
            panic!()
        };
        assert!(or_replace);
        assert_eq!(columns, vec!["a", "b"]);
        assert_eq!(query, "SELECT x, \"Y\" FROM t WHERE s = 'a;b'");
    }

    #[test]
    fn partitions_and_utility_statements() {
        assert_eq!(
            parse_ok(
                "ALTER TABLE t ADD IF NOT EXISTS PARTITION (dt='2026-11-01', n=-3) LOCATION '/x'"
            ),
            Statement::AddPartitions {
                table: ObjectName {
                    catalog: None,
                    database: None,
                    name: "t".into()
                },
                if_not_exists: true,
                partitions: vec![(
                    vec![
                        ("dt".into(), "2026-11-01".into()),
                        ("n".into(), "-3".into())
                    ],
                    Some("/x".into())
                )],
            }
        );
        assert!(matches!(
            parse_ok("msck repair table db.t"),
            Statement::RepairTable { .. }
        ));
        assert!(matches!(
            parse_ok("ALTER TABLE t RECOVER PARTITIONS"),
            Statement::RepairTable { .. }
        ));
        assert!(matches!(
            parse_ok("DROP DATABASE IF EXISTS d CASCADE"),
            Statement::DropDatabase {
                cascade: true,
                if_exists: true,
                ..
            }
        ));
        assert!(matches!(
            parse_ok("describe formatted t"),
            Statement::Describe {
                formatted: true,
                ..
            }
        ));
        assert!(parse("SELECT 1").unwrap().is_none());
        assert!(parse("SHOW ALL").unwrap().is_none());
        assert!(parse("CREATE TEMP TABLE x AS SELECT 1").unwrap().is_none());
    }

    #[test]
    fn syntax_errors_name_what_was_expected() {
        let err = parse("CREATE EXTERNAL TABLE t (a int) STORED AS PARQUET LOCATION").unwrap_err();
        assert!(err.to_string().contains("expected a location"), "{err}");
        let err = parse("DROP DATABASE d RESTRICT extra").unwrap_err();
        assert!(err.to_string().contains("unexpected \"extra\""), "{err}");
    }

    #[test]
    fn user_statements() {
        assert_eq!(
            parse_ok("CREATE USER Alice WITH PASSWORD 'it''s s3cret'"),
            Statement::CreateUser {
                name: "alice".into(),
                password: Password("it's s3cret".into()),
                admin: false,
            }
        );
        assert_eq!(
            parse_ok("create user bob password 'x' superuser;"),
            Statement::CreateUser {
                name: "bob".into(),
                password: Password("x".into()),
                admin: true,
            }
        );
        assert_eq!(
            parse_ok("ALTER USER bob PASSWORD 'y'"),
            Statement::AlterUser {
                name: "bob".into(),
                password: Some(Password("y".into())),
                admin: None,
            }
        );
        assert_eq!(
            parse_ok("ALTER USER bob WITH NOSUPERUSER"),
            Statement::AlterUser {
                name: "bob".into(),
                password: None,
                admin: Some(false),
            }
        );
        assert_eq!(
            parse_ok("DROP USER IF EXISTS bob"),
            Statement::DropUser {
                name: "bob".into(),
                if_exists: true,
            }
        );
        assert!(parse("CREATE USER carol").is_err());
        // Errors never repeat a string: it may be a password.
        let err = parse("CREATE USER carol PASSWORD 'abc' 'def'").unwrap_err();
        assert!(!err.to_string().contains("def"), "{err}");
        let err = parse("CREATE USER carol PASSWORD hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{:?}", parse_ok("CREATE USER c PASSWORD 'pw1'")).contains("pw1"));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_passwords("CREATE USER a WITH PASSWORD 'it''s x' SUPERUSER"),
            "CREATE USER a WITH PASSWORD '***' SUPERUSER"
        );
        assert_eq!(
            redact_passwords("alter user a password 'p'"),
            "alter user a password '***'"
        );
        assert_eq!(
            redact_passwords(
                "CREATE CATALOG pg USING postgres WITH (host = 'h',\n password = 'é s', user = 'u')"
            ),
            "CREATE CATALOG pg USING postgres WITH (host = 'h',\n password = '***', user = 'u')"
        );
        assert_eq!(redact_passwords("SELECT 'password'"), "SELECT 'password'");
        assert_eq!(
            redact_passwords("CREATE USER a PASSWORD 'unterminated"),
            "CREATE USER a PASSWORD ***"
        );
    }
}
