//! Hive names made from folder and header names: lower case, `[a-z0-9_]`.

/// A column or table name from arbitrary text: lower-cased, other characters `_`, and a
/// leading `_` when it would start with a digit.
pub fn column_name(text: &str) -> String {
    let mut name: String = text
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// A table name from a folder name and the crawler's prefix.
pub fn table_name(prefix: &str, folder: &str) -> String {
    let name = column_name(folder);
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}{}", name.trim_start_matches('_'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_become_hive_names() {
        assert_eq!(table_name("", "Web-Logs"), "web_logs");
        assert_eq!(table_name("raw_", "2026"), "raw_2026");
        assert_eq!(column_name("2026"), "_2026");
        assert_eq!(column_name("Order Id"), "order_id");
    }
}
