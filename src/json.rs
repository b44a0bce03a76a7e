//! Bounds on the JSON payload that serde_json does not enforce itself.

/// Whether `json` nests arrays and objects at most `limit` levels deep (a flat object is
/// 1). A linear scan without allocation that skips strings, honouring escapes; it runs
/// before parsing so that deep input costs no recursion. Malformed JSON is left for the
/// parser to reject.
pub(crate) fn depth_within(json: &[u8], limit: usize) -> bool {
    // Fast path: nesting cannot exceed the number of opening brackets (counting those in
    // strings too), and this count vectorizes. Typical sessions never take the slow path.
    let openers = json.iter().filter(|&&b| b == b'[' || b == b'{').count();
    if openers <= limit {
        return true;
    }
    let mut depth = 0usize;
    let mut rest = json;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            // Jump through the string to its closing quote (most session bytes are in
            // strings), stepping over escaped characters.
            b'"' => loop {
                let Some(at) = memchr::memchr2(b'"', b'\\', rest) else {
                    return true; // unterminated: the parser rejects it
                };
                let escape = rest.get(at) == Some(&b'\\');
                rest = rest.get(at + 1 + usize::from(escape)..).unwrap_or_default();
                if !escape {
                    break;
                }
            },
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                if depth > limit {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::depth_within;

    #[test]
    fn counts_nesting_and_ignores_brackets_in_strings() {
        assert!(depth_within(br#"{"a":[1,{"b":2}]}"#, 3));
        assert!(!depth_within(br#"{"a":[1,{"b":2}]}"#, 2));
        assert!(depth_within(br#"{"a":"[[[[{{{{\"[["}"#, 1));
        assert!(depth_within(b"5", 0));
        assert!(!depth_within(b"[]", 0));
        // More brackets than the limit, but not nested that deep: the slow path decides.
        assert!(depth_within(b"[[],[],[],[],{}]", 2));
        assert!(!depth_within(b"[[],[],[[[]]],{}]", 3));
        // Escapes inside strings, including an escaped backslash before the closing quote.
        assert!(depth_within(
            br#"[["a\"[[[", "b\\", "[[[["], {}, [], [], []]"#,
            2
        ));
        assert!(!depth_within(br#"[["\\", [[1]]], [], [], []]"#, 3));
    }
}
