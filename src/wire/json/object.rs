//! One pass over a session's JSON text: validates it, bounds its nesting and reports where
//! each top-level member's key and value lie, without building any value.
//!
//! It accepts exactly the texts that serde_json accepts as a JSON object when it validates
//! values without building them (`serde::de::IgnoredAny`, `RawValue`): RFC 8259 grammar,
//! no control characters in strings, `\u` escapes of four hex digits (a lone surrogate is
//! only an error when the string is read, as there), serde_json's limit of 127 nested
//! containers. A property test and a fuzz target hold it to that. It replaces serde_json's
//! validating scan plus a separate depth check with one pass (see BENCHMARKS.md).

use std::ops::Range;

use super::swar::{control_bytes, equal_bytes, word_at};
use crate::wire::error::{DecodeError, JsonError};

/// One top-level member of the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    /// The key's text between its quotes, escapes not decoded.
    pub(crate) key: Range<usize>,
    /// Whether the key contains escapes (then decode `key` with its quotes to compare it).
    pub(crate) key_escaped: bool,
    /// The value's text, without surrounding whitespace.
    pub(crate) value: Range<usize>,
}

/// serde_json refuses to nest 128 containers (its recursion limit); so do we, whatever
/// the configured depth, which also bounds this scanner's recursion.
const PARSER_DEPTH_LIMIT: usize = 128;

/// Checks that `text` is one JSON object nested at most `max_depth` deep (the object
/// itself is 1), calling `member` for each of its members in order.
///
/// # Errors
/// [`DecodeError::TooDeep`] for deeper nesting, [`DecodeError::Payload`] for anything
/// else that is not a JSON object, or whatever `member` returns.
pub(crate) fn scan_object(
    text: &[u8],
    max_depth: usize,
    mut member: impl FnMut(Member) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut scanner = Scanner {
        text,
        at: 0,
        max_depth,
        expected: "",
    };
    let mut failure = None;
    let mut scan = || {
        scanner.whitespace();
        if scanner.peek() != Some(b'{') {
            return Err(scanner.invalid("a JSON object"));
        }
        scanner.object(1, &mut |key, key_escaped, value| {
            member(Member {
                key,
                key_escaped,
                value,
            })
            .map_err(|error| {
                failure = Some(error);
                Stop::Member
            })
        })?;
        scanner.whitespace();
        match scanner.peek() {
            None => Ok(()),
            Some(_) => Err(scanner.invalid("the end of the data")),
        }
    };
    match scan() {
        Ok(()) => Ok(()),
        Err(Stop::TooDeep) => Err(DecodeError::TooDeep { limit: max_depth }),
        Err(Stop::Member) => failure.map_or(Ok(()), Err),
        Err(Stop::Invalid) => Err(DecodeError::Payload(JsonError::own(format!(
            "invalid JSON at byte {}: expected {}",
            scanner.at, scanner.expected
        )))),
    }
}

/// Why scanning stopped; the details stay in the [`Scanner`], so that the hot functions
/// return a result that fits in registers.
enum Stop {
    TooDeep,
    Invalid,
    /// The caller's `member` function failed (its error is kept by the caller).
    Member,
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    max_depth: usize,
    /// What was expected where scanning stopped, for the error message.
    expected: &'static str,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    #[inline]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    #[cold]
    fn invalid(&mut self, expected: &'static str) -> Stop {
        self.expected = expected;
        Stop::Invalid
    }

    /// Steps into the container at `at`, which is nested `depth` deep, and past the
    /// whitespace after its opening bracket.
    fn enter(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > self.max_depth {
            return Err(Stop::TooDeep);
        }
        if depth >= PARSER_DEPTH_LIMIT {
            return Err(self.invalid("less nesting (the JSON parser's recursion limit)"));
        }
        self.at += 1;
        self.whitespace();
        Ok(())
    }

    /// Consumes `close` if it comes next (an empty container).
    #[inline]
    fn closes(&mut self, close: u8) -> bool {
        let closes = self.peek() == Some(close);
        self.at += usize::from(closes);
        closes
    }

    /// After a member or element: `,` (then `false`) or the closing bracket (then `true`).
    #[inline]
    fn next_or_close(&mut self, close: u8, expected: &'static str) -> Result<bool, Stop> {
        self.whitespace();
        match self.peek() {
            Some(b',') => {
                self.at += 1;
                self.whitespace();
                Ok(false)
            }
            Some(byte) if byte == close => {
                self.at += 1;
                Ok(true)
            }
            _ => Err(self.invalid(expected)),
        }
    }

    /// The object at `at`, nested `depth` deep; `member` gets each member's key (between
    /// its quotes), whether the key has escapes, and the value's text.
    fn object(
        &mut self,
        depth: usize,
        member: &mut impl FnMut(Range<usize>, bool, Range<usize>) -> Result<(), Stop>,
    ) -> Result<(), Stop> {
        self.enter(depth)?;
        if self.closes(b'}') {
            return Ok(());
        }
        loop {
            if self.peek() != Some(b'"') {
                return Err(self.invalid("a string key"));
            }
            let key_start = self.at + 1;
            let key_escaped = self.string()?;
            let key = key_start..self.at - 1;
            self.colon()?;
            let value_start = self.at;
            self.value(depth)?;
            member(key, key_escaped, value_start..self.at)?;
            if self.next_or_close(b'}', "',' or '}'")? {
                return Ok(());
            }
        }
    }

    /// The array at `at`, nested `depth` deep.
    fn array(&mut self, depth: usize) -> Result<(), Stop> {
        self.enter(depth)?;
        if self.closes(b']') {
            return Ok(());
        }
        loop {
            self.value(depth)?;
            if self.next_or_close(b']', "',' or ']'")? {
                return Ok(());
            }
        }
    }

    /// The `:` after a key, with the whitespace around it.
    #[inline]
    fn colon(&mut self) -> Result<(), Stop> {
        self.whitespace();
        if self.peek() != Some(b':') {
            return Err(self.invalid("':'"));
        }
        self.at += 1;
        self.whitespace();
        Ok(())
    }

    /// The value at `at`, inside containers nested `depth` deep.
    fn value(&mut self, depth: usize) -> Result<(), Stop> {
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'{') => self.object(depth + 1, &mut |_, _, _| Ok(())),
            Some(b'[') => self.array(depth + 1),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.invalid("a JSON value")),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Stop> {
        let end = self.at + word.len();
        if self.text.get(self.at..end) != Some(word) {
            return Err(self.invalid("true, false or null"));
        }
        self.at = end;
        Ok(())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    #[inline]
    fn number(&mut self) -> Result<(), Stop> {
        self.at += usize::from(self.peek() == Some(b'-'));
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.invalid("a digit")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Result<(), Stop> {
        if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return Err(self.invalid("a digit"));
        }
        self.digits();
        Ok(())
    }

    /// The string whose opening quote is at `at`; returns whether it has escapes.
    #[inline]
    fn string(&mut self) -> Result<bool, Stop> {
        self.at += 1;
        let mut escaped = false;
        loop {
            self.skip_plain();
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.at += 1;
                    self.escape()?;
                }
                Some(_) => return Err(self.invalid("no control character in a string")),
                None => return Err(self.invalid("'\"' to end the string")),
            }
        }
    }

    /// Moves `at` to the next `"`, `\` or control character (or the end), eight bytes at a
    /// time: most of a session's bytes are in strings.
    #[inline]
    fn skip_plain(&mut self) {
        while let Some(word) = word_at(self.text, self.at) {
            let special = equal_bytes(word, b'"') | equal_bytes(word, b'\\') | control_bytes(word);
            if special != 0 {
                self.at += (special.trailing_zeros() / 8) as usize;
                return;
            }
            self.at += 8;
        }
        while self
            .peek()
            .is_some_and(|b| b != b'"' && b != b'\\' && b >= 0x20)
        {
            self.at += 1;
        }
    }

    /// The escape after a backslash.
    #[inline]
    fn escape(&mut self) -> Result<(), Stop> {
        match self.peek() {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.at += 1,
            Some(b'u') => {
                let hex = self.text.get(self.at + 1..self.at + 5);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return Err(self.invalid("four hex digits after \\u"));
                }
                self.at += 5;
            }
            _ => return Err(self.invalid("a valid escape")),
        }
        Ok(())
    }
}
