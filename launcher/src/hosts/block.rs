//! The managed block of a hosts file: its lines, and the file's text with
//! the block put in, replaced or taken out. Every line outside the block
//! stays exactly as it was, byte for byte.

/// The block's first line.
pub const BEGIN: &str =
    "# BEGIN agentfs (managed by `agentfs hosts`; lines up to END are replaced)";
/// The block's last line.
pub const END: &str = "# END agentfs";

/// What marks the block, whatever the rest of the first line says.
const BEGIN_MARK: &str = "# BEGIN agentfs";

/// The block for `names`: a `127.0.0.1` and a `::1` line for each.
pub fn render(names: &[String]) -> String {
    let mut block = format!("{BEGIN}\n");
    for name in names {
        block += &format!("127.0.0.1 {name}\n::1 {name}\n");
    }
    block += END;
    block += "\n";
    block
}

/// Where the block is in `text`: the byte range of its lines, END's
/// newline included. `Err` when a BEGIN has no END after it (the file was
/// edited by hand): agentfs changes nothing it cannot delimit.
pub fn find(text: &str) -> Result<Option<std::ops::Range<usize>>, String> {
    let mut offset = 0;
    let mut start = None;
    for (number, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        if start.is_none() && bare.starts_with(BEGIN_MARK) {
            start = Some((offset, number + 1));
        } else if let (Some((from, _)), true) = (start, bare == END) {
            return Ok(Some(from..offset + line.len()));
        }
        offset += line.len();
    }
    match start {
        Some((_, line)) => Err(format!(
            "line {line} begins agentfs's block but no `{END}` line ends it: fix the file by hand"
        )),
        None => Ok(None),
    }
}

/// `text` with `block` in place of the old block, or appended when there
/// was none (after a newline, if the last line had none). `None` for the
/// block takes it out.
pub fn splice(text: &str, block: Option<&str>) -> Result<String, String> {
    let block = block.unwrap_or("");
    Ok(match find(text)? {
        Some(range) => format!("{}{block}{}", &text[..range.start], &text[range.end..]),
        None if block.is_empty() => text.to_owned(),
        None if text.is_empty() || text.ends_with('\n') => format!("{text}{block}"),
        None => format!("{text}\n{block}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREIGN: &str = "127.0.0.1\tlocalhost\r\n# a comment  \n::1 localhost ip6-localhost\n";

    #[test]
    fn foreign_lines_are_kept_byte_for_byte() {
        let names = vec!["a.localhost".to_owned(), "b.a.localhost".to_owned()];
        let synced = splice(FOREIGN, Some(&render(&names))).unwrap();
        assert!(synced.starts_with(FOREIGN));
        let with_tail = format!("{synced}10.0.0.1 printer\n");
        let again = splice(&with_tail, Some(&render(&names[..1]))).unwrap();
        assert_eq!(
            again,
            format!("{FOREIGN}{}10.0.0.1 printer\n", render(&names[..1]))
        );
        let cleaned = splice(&again, None).unwrap();
        assert_eq!(cleaned, format!("{FOREIGN}10.0.0.1 printer\n"));
    }

    #[test]
    fn the_block_lists_both_addresses() {
        let block = render(&["web.localhost".to_owned()]);
        assert_eq!(
            block,
            format!("{BEGIN}\n127.0.0.1 web.localhost\n::1 web.localhost\n{END}\n")
        );
    }

    #[test]
    fn a_block_without_an_end_is_left_alone() {
        let text = format!("{FOREIGN}{BEGIN}\n127.0.0.1 x.localhost\n");
        let err = splice(&text, Some("new")).unwrap_err();
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn a_last_line_without_newline_gets_one_before_the_block() {
        assert_eq!(splice("a b", Some("X\n")).unwrap(), "a b\nX\n");
        assert_eq!(splice("", Some("X\n")).unwrap(), "X\n");
        assert_eq!(splice("a b", None).unwrap(), "a b");
    }
}
