//! The values in a code signature's entitlements: an XML property list.
//!
//! Only the top-level dictionary's booleans matter here, and what matters is
//! the value: the JDK's `java` carries
//! `com.apple.security.cs.allow-dyld-environment-variables` set to `false`.
//! The scanner is deliberately small: tags, keys and their next value; no
//! allocation beyond the keys, no recursion, linear in the input.

/// One top-level value, as far as the rules care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    /// A string, number, array or dictionary.
    Other,
}

/// The top-level keys of an entitlements plist and their values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlements {
    entries: Vec<(String, Value)>,
}

impl Entitlements {
    /// The boolean value of `key`; `None` if absent or not a boolean.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                Value::Bool(b) => Some(*b),
                Value::Other => None,
            })
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Reads the top-level dictionary of an XML plist. Malformed input gives
    /// whatever was read before the damage: it never fails or panics.
    pub fn parse_xml(xml: &[u8]) -> Entitlements {
        let mut entries = Vec::new();
        let mut depth = 0usize;
        let mut pending_key: Option<String> = None;
        let mut at = 0;
        while let Some((tag, end)) = next_tag(xml, at) {
            match tag {
                Tag::Open(name) if name == b"key" && depth == 1 => {
                    let (text, after) = text_until_close(xml, end, b"</key>");
                    pending_key = Some(unescape(text));
                    at = after;
                    continue;
                }
                Tag::Open(name) | Tag::Empty(name) if depth == 1 && pending_key.is_some() => {
                    let value = match (name, tag_is_empty(&tag)) {
                        (b"true", true) => Value::Bool(true),
                        (b"false", true) => Value::Bool(false),
                        _ => Value::Other,
                    };
                    entries.push((pending_key.take().unwrap_or_default(), value));
                    if matches!(tag, Tag::Open(n) if n == b"dict" || n == b"array") {
                        depth += 1;
                    }
                }
                Tag::Open(name) if name == b"dict" || name == b"array" => depth += 1,
                Tag::Close(name) if name == b"dict" || name == b"array" => {
                    depth = depth.saturating_sub(1);
                }
                _ => {}
            }
            at = end;
        }
        Entitlements { entries }
    }
}

enum Tag<'a> {
    Open(&'a [u8]),
    Close(&'a [u8]),
    Empty(&'a [u8]),
    /// `<?xml ...?>`, `<!DOCTYPE ...>`, comments.
    Meta,
}

fn tag_is_empty(tag: &Tag<'_>) -> bool {
    matches!(tag, Tag::Empty(_))
}

/// The next tag at or after `from`, and the index just past it.
fn next_tag(xml: &[u8], from: usize) -> Option<(Tag<'_>, usize)> {
    let start = from + xml.get(from..)?.iter().position(|&b| b == b'<')?;
    let body = &xml[start + 1..];
    if body.starts_with(b"!--") {
        let close = find(body, b"-->")?;
        return Some((Tag::Meta, start + 1 + close + 3));
    }
    let close = body.iter().position(|&b| b == b'>')?;
    let inner = &body[..close];
    let end = start + 1 + close + 1;
    let tag = if inner.starts_with(b"?") || inner.starts_with(b"!") {
        Tag::Meta
    } else if let Some(name) = inner.strip_prefix(b"/") {
        Tag::Close(name.trim_ascii())
    } else if let Some(name) = inner.strip_suffix(b"/") {
        Tag::Empty(tag_name(name))
    } else {
        Tag::Open(tag_name(inner))
    };
    Some((tag, end))
}

fn tag_name(inner: &[u8]) -> &[u8] {
    let inner = inner.trim_ascii();
    let end = inner
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(inner.len());
    &inner[..end]
}

fn text_until_close<'a>(xml: &'a [u8], from: usize, close: &[u8]) -> (&'a [u8], usize) {
    let rest = xml.get(from..).unwrap_or_default();
    match find(rest, close) {
        Some(at) => (&rest[..at], from + at + close.len()),
        None => (rest, xml.len()),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn unescape(text: &[u8]) -> String {
    String::from_utf8_lossy(text.trim_ascii())
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const JDK_LIKE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <!-- <key>com.apple.security.cs.allow-jit</key><false/> -->
    <key>com.apple.security.cs.allow-jit</key>
    <true/>
    <key>com.apple.security.cs.allow-dyld-environment-variables</key>
    <false/>
    <key>nested</key>
    <dict><key>com.apple.security.cs.disable-library-validation</key><true/></dict>
    <key>groups</key>
    <array><string>a</string></array>
    <key>com.apple.security.cs.disable-library-validation</key> <true />
</dict>
</plist>"#;

    #[test]
    fn values_not_just_keys() {
        let e = Entitlements::parse_xml(JDK_LIKE.as_bytes());
        assert_eq!(e.bool("com.apple.security.cs.allow-jit"), Some(true));
        assert_eq!(
            e.bool("com.apple.security.cs.allow-dyld-environment-variables"),
            Some(false)
        );
        assert_eq!(e.bool("groups"), None);
        assert_eq!(e.bool("missing"), None);
        assert_eq!(e.len(), 5, "nested keys are not top-level: {e:?}");
        assert_eq!(
            e.bool("com.apple.security.cs.disable-library-validation"),
            Some(true)
        );
    }

    #[test]
    fn garbage_is_harmless() {
        for junk in [
            &b""[..],
            b"<",
            b"<dict><key>a",
            b"<dict><key>a</key>",
            b"<!--",
            b"<dict><key>a</key><true/></dict></dict></dict>",
            b"\xff\xfe<dict>\x00<key>\xc3</key><false/>",
        ] {
            let _ = Entitlements::parse_xml(junk);
        }
        let e = Entitlements::parse_xml(b"<dict><key>a &amp; b</key><true/></dict>");
        assert_eq!(e.bool("a & b"), Some(true));
    }
}
