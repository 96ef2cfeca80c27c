//! Plain-text tables for a terminal: columns padded to their widest cell,
//! trailing spaces trimmed.

/// `rows` as lines, each cell padded to its column's width (in characters)
/// and the columns two spaces apart; every line starts with `indent`.
pub fn aligned<R: AsRef<[String]>>(rows: &[R], indent: &str) -> String {
    let columns = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.as_ref().get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(indent);
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up_and_lines_end_clean() {
        let rows = [
            ["APP".to_owned(), "STATE".to_owned()],
            ["web-long".to_owned(), "ok".to_owned()],
            ["é".to_owned(), String::new()],
        ];
        assert_eq!(
            super::aligned(&rows, "  "),
            "  APP       STATE\n  web-long  ok\n  é\n"
        );
    }
}
