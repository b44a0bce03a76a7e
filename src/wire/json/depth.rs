//! The nesting bound on JSON that serde_json does not enforce itself, checked before any
//! parsing.

use super::swar::{bit_per_byte, equal_bytes, splat};

/// Whether `json` nests arrays and objects at most `limit` levels deep (a flat object is
/// 1). A linear scan without allocation that skips strings, honouring escapes; it runs
/// before parsing so that deep input costs no recursion. Malformed JSON is left for the
/// parser to reject.
pub(crate) fn depth_within(json: &[u8], limit: usize) -> bool {
    // Fast path: nesting cannot exceed the number of opening brackets (counting those in
    // strings too). Typical sessions never take the slow path.
    if openers(json) <= limit {
        return true;
    }
    let mut scan = Scan::default();
    let mut blocks = json.chunks_exact(BLOCK);
    blocks.all(|block| scan.block(block, limit)) && scan.bytes(blocks.remainder(), limit)
}

const BLOCK: usize = 64;

/// How many bytes are `[` or `{`. Counted in byte-wide lanes over chunks short enough that
/// a lane cannot overflow, which the compiler vectorizes.
fn openers(json: &[u8]) -> usize {
    json.chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(is_opener(b))));
            usize::from(n)
        })
        .sum()
}

/// `[` (0x5B) and `{` (0x7B) differ only in bit 5, as do `]` and `}`.
const fn is_opener(b: u8) -> bool {
    b & !0x20 == b'['
}

const fn is_closer(b: u8) -> bool {
    b & !0x20 == b']'
}

/// The state of the slow path between blocks.
#[derive(Default)]
struct Scan {
    depth: usize,
    in_string: bool,
    /// The previous byte was a backslash inside a string.
    escaped: bool,
}

impl Scan {
    /// One block of [`BLOCK`] bytes, with bit masks: which bytes are inside strings follows
    /// from the quotes by a prefix XOR (as in simdjson), and only the brackets outside
    /// strings are then visited one by one. A block with a backslash (rare in session data)
    /// goes byte by byte instead.
    fn block(&mut self, block: &[u8], limit: usize) -> bool {
        let (mut quotes, mut backslashes, mut brackets) = (0u64, 0u64, 0u64);
        for (k, word) in block.chunks_exact(8).enumerate() {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let word = u64::from_le_bytes(bytes);
            let folded = word & !splat(0x20);
            quotes |= bit_per_byte(equal_bytes(word, b'"')) << (8 * k);
            backslashes |= bit_per_byte(equal_bytes(word, b'\\')) << (8 * k);
            let bracket = equal_bytes(folded, b'[') | equal_bytes(folded, b']');
            brackets |= bit_per_byte(bracket) << (8 * k);
        }
        if backslashes != 0 || self.escaped {
            return self.bytes(block, limit);
        }
        // Bit i: an odd number of quotes at or before i, i.e. inside a string that opened
        // in this block (a closing quote itself counts as outside).
        let mut inside = quotes;
        for shift in [1, 2, 4, 8, 16, 32] {
            inside ^= inside << shift;
        }
        if self.in_string {
            inside = !inside;
        }
        let mut brackets = brackets & !inside;
        while brackets != 0 {
            let at = brackets.trailing_zeros() as usize;
            if block.get(at).copied().is_some_and(is_opener) {
                self.depth += 1;
                if self.depth > limit {
                    return false;
                }
            } else {
                self.depth = self.depth.saturating_sub(1);
            }
            brackets &= brackets - 1;
        }
        self.in_string ^= quotes.count_ones() % 2 == 1;
        true
    }

    /// Any bytes, one at a time.
    fn bytes(&mut self, bytes: &[u8], limit: usize) -> bool {
        for &b in bytes {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
            } else if b == b'"' {
                self.in_string = true;
            } else if is_opener(b) {
                self.depth += 1;
                if self.depth > limit {
                    return false;
                }
            } else if is_closer(b) {
                self.depth = self.depth.saturating_sub(1);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::depth_within;

    /// The deepest nesting, byte by byte, the obvious way.
    fn reference_depth(json: &[u8]) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &b in json {
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// The block path (bit masks, prefix XOR, carries between blocks) agrees with the
        /// byte-by-byte definition on any input, well-formed or not, at every limit.
        #[test]
        fn agrees_with_the_byte_by_byte_definition(
            // Backslashes are rare, so most 64-byte blocks take the bit-mask path.
            json in proptest::collection::vec(prop_oneof![
                // Plus near misses: the same low 7 bits with the high bit set, and bytes
                // one bit away from the brackets.
                40 => prop::sample::select(
                    b"[]{}\"a:,|\xa2\xdb\xdd\xfb\xfd\x1b\x5a\x5e".to_vec()
                ),
                1 => Just(b'\\'),
            ], 0..400),
            limit in 0usize..12,
        ) {
            prop_assert_eq!(depth_within(&json, limit), reference_depth(&json) <= limit);
        }
    }

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
