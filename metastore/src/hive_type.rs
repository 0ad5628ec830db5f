//! Hive column types: parsing from DDL text and printing back in Hive's spelling.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{MetastoreError, Result};

/// A Hive column type, as written in `CREATE TABLE` and stored in the metastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum HiveType {
    Boolean,
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal { precision: u8, scale: i8 },
    String,
    Varchar(u32),
    Char(u32),
    Binary,
    Date,
    Timestamp,
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
    Struct(Vec<StructField>),
}

/// One field of a `struct<...>` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructField {
    pub name: String,
    pub data_type: HiveType,
}

impl HiveType {
    /// Parses Hive type text such as `decimal(12,2)` or `map<string,array<int>>`.
    /// Keywords are case-insensitive; `integer` and `numeric`/`dec` are accepted aliases.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parser = TypeParser { text, pos: 0 };
        let parsed = parser.parse_type()?;
        parser.skip_ws();
        if parser.pos != text.len() {
            return Err(parser.error(format!("unexpected \"{}\"", &text[parser.pos..])));
        }
        Ok(parsed)
    }

    /// True for types whose values can be partition keys (primitive types).
    pub fn is_primitive(&self) -> bool {
        !matches!(
            self,
            HiveType::Array(_) | HiveType::Map(..) | HiveType::Struct(_)
        )
    }
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::Boolean => f.write_str("boolean"),
            HiveType::TinyInt => f.write_str("tinyint"),
            HiveType::SmallInt => f.write_str("smallint"),
            HiveType::Int => f.write_str("int"),
            HiveType::BigInt => f.write_str("bigint"),
            HiveType::Float => f.write_str("float"),
            HiveType::Double => f.write_str("double"),
            HiveType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            HiveType::String => f.write_str("string"),
            HiveType::Varchar(n) => write!(f, "varchar({n})"),
            HiveType::Char(n) => write!(f, "char({n})"),
            HiveType::Binary => f.write_str("binary"),
            HiveType::Date => f.write_str("date"),
            HiveType::Timestamp => f.write_str("timestamp"),
            HiveType::Array(inner) => write!(f, "array<{inner}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{}", field.name, field.data_type)?;
                }
                f.write_str(">")
            }
        }
    }
}

impl From<HiveType> for String {
    fn from(value: HiveType) -> Self {
        value.to_string()
    }
}

impl TryFrom<String> for HiveType {
    type Error = MetastoreError;
    fn try_from(value: String) -> Result<Self> {
        HiveType::parse(&value)
    }
}

struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn error(&self, reason: String) -> MetastoreError {
        MetastoreError::InvalidType {
            text: self.text.to_string(),
            reason,
        }
    }

    fn skip_ws(&mut self) {
        while self.text[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_string()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = self.text[self.pos..].chars().next();
            Err(self.error(match found {
                Some(found) => format!("expected '{c}' but found '{found}'"),
                None => format!("expected '{c}' but the type ended"),
            }))
        }
    }

    fn number(&mut self) -> Result<u32> {
        let word = self.word();
        word.parse()
            .map_err(|_| self.error(format!("expected a number but found \"{word}\"")))
    }

    fn parse_type(&mut self) -> Result<HiveType> {
        let word = self.word();
        let ty = match word.to_ascii_lowercase().as_str() {
            "boolean" => HiveType::Boolean,
            "tinyint" => HiveType::TinyInt,
            "smallint" => HiveType::SmallInt,
            "int" | "integer" => HiveType::Int,
            "bigint" => HiveType::BigInt,
            "float" | "real" => HiveType::Float,
            "double" => {
                // `double precision` is accepted as in Hive 2.2+.
                let save = self.pos;
                if !self.word().eq_ignore_ascii_case("precision") {
                    self.pos = save;
                }
                HiveType::Double
            }
            "decimal" | "numeric" | "dec" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat('(') {
                    precision = self.number()?;
                    if self.eat(',') {
                        scale = self.number()?;
                    }
                    self.expect(')')?;
                }
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(self.error(format!(
                        "decimal precision must be 1 to 38 and scale at most the precision, got ({precision},{scale})"
                    )));
                }
                HiveType::Decimal {
                    precision: precision as u8,
                    scale: scale as i8,
                }
            }
            "string" => HiveType::String,
            "varchar" => HiveType::Varchar(self.length()?),
            "char" => HiveType::Char(self.length()?),
            "binary" => HiveType::Binary,
            "date" => HiveType::Date,
            "timestamp" => HiveType::Timestamp,
            "array" => {
                self.expect('<')?;
                let inner = self.parse_type()?;
                self.expect('>')?;
                HiveType::Array(Box::new(inner))
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse_type()?;
                if !key.is_primitive() {
                    return Err(self.error(format!("map keys must be a primitive type, not {key}")));
                }
                self.expect(',')?;
                let value = self.parse_type()?;
                self.expect('>')?;
                HiveType::Map(Box::new(key), Box::new(value))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    let name = self.word();
                    if name.is_empty() {
                        return Err(self.error("expected a struct field name".into()));
                    }
                    self.expect(':')?;
                    fields.push(StructField {
                        name,
                        data_type: self.parse_type()?,
                    });
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect('>')?;
                HiveType::Struct(fields)
            }
            "" => return Err(self.error("expected a type name".into())),
            other => return Err(self.error(format!("unknown type \"{other}\""))),
        };
        Ok(ty)
    }

    fn length(&mut self) -> Result<u32> {
        self.expect('(')?;
        let n = self.number()?;
        self.expect(')')?;
        if n == 0 {
            return Err(self.error("length must be at least 1".into()));
        }
        Ok(n)
    }
}

impl Serialize for StructField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}:{}", self.name, self.data_type))
    }
}

impl<'de> Deserialize<'de> for StructField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let (name, ty) = text
            .split_once(':')
            .ok_or_else(|| serde::de::Error::custom(format!("bad struct field \"{text}\"")))?;
        Ok(StructField {
            name: name.to_string(),
            data_type: HiveType::parse(ty).map_err(serde::de::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_types_round_trip_through_text() {
        for text in [
            "int",
            "decimal(12,2)",
            "varchar(20)",
            "array<struct<a:int,b:map<string,array<double>>>>",
            "map<string,timestamp>",
        ] {
            let parsed = HiveType::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!(HiveType::parse("INTEGER").unwrap(), HiveType::Int);
        assert_eq!(
            HiveType::parse("Decimal").unwrap(),
            HiveType::Decimal {
                precision: 10,
                scale: 0
            }
        );
    }

    #[test]
    fn bad_types_name_the_problem() {
        let err = HiveType::parse("array<int").unwrap_err().to_string();
        assert!(err.contains("expected '>'"), "{err}");
        let err = HiveType::parse("decimal(40,2)").unwrap_err().to_string();
        assert!(err.contains("precision must be 1 to 38"), "{err}");
        let err = HiveType::parse("text").unwrap_err().to_string();
        assert!(err.contains("unknown type \"text\""), "{err}");
        let err = HiveType::parse("map<array<int>,int>")
            .unwrap_err()
            .to_string();
        assert!(err.contains("map keys must be a primitive"), "{err}");
    }
}
