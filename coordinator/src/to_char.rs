//! PostgreSQL's `to_char(timestamp, template)` templates (`'YYYY-MM-DD HH24:MI:SS'`,
//! `'FMMonth DD'`) in terms DataFusion runs: its `to_char` takes chrono's `strftime`
//! patterns instead and would print a PostgreSQL template as it is. A template given as a
//! constant is translated into chrono's patterns, with `upper`/`lower`/`rpad` where
//! PostgreSQL capitalizes or pads a name and `date_part` for fields chrono has no pattern
//! for. A template holding `%` is taken to be chrono's already and left alone, as are
//! templates given as expressions.

/// One piece of a translated template.
#[derive(Debug, PartialEq)]
enum Piece {
    /// chrono pattern text (literal text escaped).
    Chrono(String),
    /// A month or day name, as chrono writes it, then cased and padded as PostgreSQL does.
    Name {
        pattern: &'static str,
        case: Case,
        /// PostgreSQL pads full names to 9 characters unless the pattern has `FM`.
        pad: bool,
    },
    /// A field chrono has no pattern for, as SQL over the value (`{v}`).
    Sql(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Case {
    Upper,
    Capitalized,
    Lower,
}

/// Numeric and fixed-text patterns: PostgreSQL's (matched without regard to case), chrono's
/// padded and unpadded (`FM`) forms. Longer patterns come before their prefixes.
const NUMERIC: &[(&str, &str, &str)] = &[
    ("HH24", "%H", "%-H"),
    ("HH12", "%I", "%-I"),
    ("HH", "%I", "%-I"),
    ("MI", "%M", "%-M"),
    ("SS", "%S", "%-S"),
    ("MS", "%3f", "%3f"),
    ("US", "%6f", "%6f"),
    ("IYYY", "%G", "%G"),
    ("YYYY", "%Y", "%Y"),
    ("YY", "%y", "%-y"),
    ("IW", "%V", "%-V"),
    ("MM", "%m", "%-m"),
    ("DDD", "%j", "%-j"),
    ("DD", "%d", "%-d"),
    ("ID", "%u", "%u"),
    ("TZ", "%Z", "%Z"),
    ("OF", "%:z", "%:z"),
];

/// Patterns PostgreSQL knows that are not translated: a template with one is left alone.
const UNSUPPORTED: &[&str] = &[
    "Y,YYY", "YYY", "IYY", "IY", "SSSSS", "SSSS", "FF", "TZH", "TZM", "A.M.", "P.M.", "B.C.",
    "A.D.", "BC", "AD", "CC", "RM", "WW", "TH", "SP", "FX", "TM", "J", "W", "Y", "I",
];

/// The pieces of PostgreSQL template `template`, or None when it uses a pattern that is
/// not translated.
fn translate(template: &str) -> Option<Vec<Piece>> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut chrono = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        let fill_mode = starts_with_ignore_case(rest, "FM");
        if fill_mode {
            rest = &rest[2..];
        }
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            chrono.push_str(&quoted[..end].replace('%', "%%"));
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        if let Some((pattern, case)) = name_pattern(rest) {
            flush(&mut pieces, &mut chrono);
            let (chrono_pattern, full) = match pattern.len() {
                5 => ("%B", true),
                3 if pattern.eq_ignore_ascii_case("DAY") => ("%A", true),
                3 => ("%b", false),
                _ => ("%a", false),
            };
            pieces.push(Piece::Name {
                pattern: chrono_pattern,
                case,
                pad: full && !fill_mode,
            });
            rest = &rest[pattern.len()..];
            continue;
        }
        if let Some(&(pattern, padded, unpadded)) = NUMERIC
            .iter()
            .find(|(p, ..)| starts_with_ignore_case(rest, p))
        {
            chrono.push_str(if fill_mode { unpadded } else { padded });
            rest = &rest[pattern.len()..];
            continue;
        }
        if let Some(meridiem) = ["AM", "PM", "am", "pm"]
            .into_iter()
            .find(|m| rest.starts_with(m))
        {
            chrono.push_str(if meridiem.starts_with(char::is_uppercase) {
                "%p"
            } else {
                "%P"
            });
            rest = &rest[2..];
            continue;
        }
        if starts_with_ignore_case(rest, "Q") || starts_with_ignore_case(rest, "D") {
            flush(&mut pieces, &mut chrono);
            pieces.push(Piece::Sql(if starts_with_ignore_case(rest, "Q") {
                "CAST(CAST(date_part('quarter', {v}) AS INT) AS VARCHAR)"
            } else {
                "CAST(CAST(date_part('dow', {v}) AS INT) + 1 AS VARCHAR)"
            }));
            rest = &rest[1..];
            continue;
        }
        if UNSUPPORTED.iter().any(|p| starts_with_ignore_case(rest, p)) {
            return None;
        }
        let c = rest.chars().next()?;
        if c == '%' {
            chrono.push_str("%%");
        } else {
            chrono.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut pieces, &mut chrono);
    Some(pieces)
}

fn flush(pieces: &mut Vec<Piece>, chrono: &mut String) {
    if !chrono.is_empty() {
        pieces.push(Piece::Chrono(std::mem::take(chrono)));
    }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A month or day name pattern at the start of `text` (MONTH, MON, DAY, DY in any case) and
/// how its case asks for the name to be written.
fn name_pattern(text: &str) -> Option<(&str, Case)> {
    let pattern = ["MONTH", "MON", "DAY", "DY"]
        .into_iter()
        .find(|p| starts_with_ignore_case(text, p))?;
    let written = &text[..pattern.len()];
    let case = if written.chars().all(|c| c.is_ascii_uppercase()) {
        Case::Upper
    } else if written.chars().skip(1).all(|c| c.is_ascii_lowercase())
        && written.starts_with(|c: char| c.is_ascii_uppercase())
    {
        Case::Capitalized
    } else {
        Case::Lower
    };
    Some((written, case))
}

/// SQL computing PostgreSQL's `to_char(value, 'template')` with DataFusion's functions, or
/// None to leave the call as it is (a chrono template, or a pattern not translated).
pub(crate) fn to_char_sql(value: &str, template: &str) -> Option<String> {
    if template.contains('%') {
        return None;
    }
    let quoted = |text: &str| format!("'{}'", text.replace('\'', "''"));
    let parts: Vec<String> = translate(template)?
        .into_iter()
        .map(|piece| match piece {
            Piece::Chrono(pattern) => format!("to_char({value}, {})", quoted(&pattern)),
            Piece::Name { pattern, case, pad } => {
                let mut sql = format!("to_char({value}, '{pattern}')");
                if pad {
                    sql = format!("rpad({sql}, 9)");
                }
                match case {
                    Case::Upper => format!("upper({sql})"),
                    Case::Lower => format!("lower({sql})"),
                    Case::Capitalized => sql,
                }
            }
            Piece::Sql(sql) => sql.replace("{v}", value),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(" || "))
}

#[cfg(test)]
mod tests {
    use super::to_char_sql;

    #[test]
    fn numeric_patterns_become_chrono_patterns() {
        assert_eq!(
            to_char_sql("d", "YYYY-MM-DD HH24:MI:SS").as_deref(),
            Some("to_char(d, '%Y-%m-%d %H:%M:%S')")
        );
        assert_eq!(
            to_char_sql("d", "yyyy/FMmm/FMdd hh12 AM \"at\" pm").as_deref(),
            Some("to_char(d, '%Y/%-m/%-d %I %p at %P')")
        );
    }

    #[test]
    fn names_are_cased_and_padded_as_postgresql_writes_them() {
        assert_eq!(
            to_char_sql("d", "Month DD").as_deref(),
            Some("rpad(to_char(d, '%B'), 9) || to_char(d, ' %d')")
        );
        assert_eq!(
            to_char_sql("d", "FMMONTH, Dy").as_deref(),
            Some("upper(to_char(d, '%B')) || to_char(d, ', ') || to_char(d, '%a')")
        );
        assert_eq!(
            to_char_sql("d", "mon Q").as_deref(),
            Some(
                "lower(to_char(d, '%b')) || to_char(d, ' ') || \
                 CAST(CAST(date_part('quarter', d) AS INT) AS VARCHAR)"
            )
        );
    }

    #[test]
    fn chrono_templates_and_untranslated_patterns_are_left_alone() {
        assert_eq!(to_char_sql("d", "%Y-%m-%d"), None);
        assert_eq!(to_char_sql("d", "YYYY-WW"), None);
        assert_eq!(to_char_sql("d", "DDth"), None);
    }
}
