//! Splitting a script into statements at top-level semicolons.

/// Splits SQL text into statements, honouring quotes ('', "", ``), dollar quotes ($tag$),
/// and comments (`--`, `/* */`). Empty statements are dropped; each statement is trimmed
/// and has no trailing `;`.
pub fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = sql.as_bytes();
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == q {
                        // A doubled quote is an escaped quote inside the literal.
                        if i + 1 < bytes.len() && bytes[i + 1] == q {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    if bytes[i] == b'\\' && q == b'\'' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                if let Some(len) = dollar_tag_len(&sql[i..]) {
                    let tag = &sql[i..i + len];
                    match sql[i + len..].find(tag) {
                        Some(end) => i += len + end + len - 1,
                        None => i = bytes.len(),
                    }
                }
            }
            b';' => {
                push_statement(&mut out, &sql[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push_statement(&mut out, &sql[start.min(sql.len())..]);
    out
}

fn push_statement(out: &mut Vec<String>, text: &str) {
    if !is_blank(text) {
        out.push(text.trim().to_string());
    }
}

/// True when the text holds nothing but whitespace and comments.
pub fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r
                .split_once('\n')
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r
                .split_once("*/")
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else {
            return rest.is_empty();
        }
    }
}

/// Length of a `$tag$` opener at the start of `text`, if there is one.
fn dollar_tag_len(text: &str) -> Option<usize> {
    let rest = &text[1..];
    let end = rest.find('$')?;
    let tag = &rest[..end];
    tag.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        .then_some(end + 2)
}

/// True when `text` ends a statement: its last significant character is a top-level `;`.
/// The shell uses it to know when a multi-line statement is complete.
pub fn is_complete(text: &str) -> bool {
    let trimmed = text.trim_end();
    if !trimmed.ends_with(';') {
        return false;
    }
    // The `;` must not be inside a quote or comment: splitting must consume it.
    let joined: usize = split_statements(trimmed).iter().map(|s| s.len()).sum();
    let unterminated =
        split_statements(&format!("{trimmed}\nSELECT 1")).len() == split_statements(trimmed).len();
    joined > 0 && !unterminated
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let sql = "SELECT ';' AS a; -- c;\nSELECT $$x;y$$; /* ; */ SELECT \"a;b\" ;;";
        assert_eq!(
            split_statements(sql),
            vec![
                "SELECT ';' AS a",
                "-- c;\nSELECT $$x;y$$",
                "/* ; */ SELECT \"a;b\""
            ]
        );
        assert!(split_statements("  -- only a comment\n").is_empty());
    }

    #[test]
    fn knows_when_a_statement_is_complete() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1\n  FROM t;  "));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT 'a;"));
        assert!(!is_complete("SELECT 1 /* ; "));
    }
}
