//! Python's pickle, as Beaker and TurboGears keep server-side sessions (feature `pickle`):
//! a session map read from, and written as, a pickled `dict` of plain values.
//!
//! Unpickling runs code in Python; here it only ever builds data. Before anything is
//! decoded, [`from_pickle`] walks the opcodes once without building a value: it refuses
//! every opcode that names a class or calls a function (`GLOBAL`, `STACK_GLOBAL`, `REDUCE`,
//! `BUILD`, `INST`, `OBJ`, `NEWOBJ`, `NEWOBJ_EX`, the extension registry, persistent ids,
//! out-of-band buffers), and sets and bytearrays (not plain values); it checks every length
//! against the bytes that are left (so a length that asks for gigabytes is refused before
//! any allocation), and it bounds the value the pickle would expand to, memo references
//! counted at every use (a few hundred bytes can otherwise describe a value of 2^30 nodes),
//! and its depth. Only then does [`serde-pickle`](https://docs.rs/serde-pickle) decode it:
//! a maintained decoder of protocols 0-5 (memo, frames, every integer and string form) that
//! never resolves a class itself, kept from the inputs above by this walk.
//!
//! Values map to the JSON of a session map: `str` to a string, `int` to a number (within
//! 64 bits), `float` to a number (finite), `bool`, `None` to `null`, `list` and `tuple` to
//! an array (a tuple comes back as a list), `dict` with `str` keys to an object. `bytes`,
//! other keys, larger integers, NaN and infinities have no JSON form and are refused as
//! [`PickleError::Unrepresentable`] rather than changed. [`to_pickle`] writes protocol 3,
//! which every Python 3 reads.
//!
//! ```
//! # fn main() -> Result<(), cookie_session::pickle::PickleError> {
//! use cookie_session::pickle::{Limits, from_pickle, to_pickle};
//! let map = serde_json::json!({"user": "ada", "cart": [1, 2.5, null]});
//! let pickled = to_pickle(map.as_object().unwrap())?;
//! assert_eq!(from_pickle(&pickled, &Limits::default())?, *map.as_object().unwrap());
//! // A class reference is refused, never looked up.
//! let hostile = b"cos\nsystem\n(S'echo hi'\ntR.";
//! assert!(from_pickle(hostile, &Limits::default()).is_err());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Number, Value};
use serde_pickle::{HashableValue, Value as Py};

/// How large and deep a pickle may be and expand to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest pickle, in bytes. Default 1 MiB (the stores' record limit).
    pub max_bytes: usize,
    /// The deepest nesting of containers in the value. Default 64.
    pub max_depth: usize,
    /// The largest value once decoded, in about the bytes it takes: 64 per value
    /// (container, number, string, constant) and one per byte of text, every memo
    /// reference counted in full at every use. Default 16 MiB (at most 256 Ki values).
    pub max_expanded: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 20,
            max_depth: 64,
            max_expanded: 16 << 20,
        }
    }
}

/// Why a pickle was not read or a map not written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PickleError {
    /// An opcode that names a class, calls a function, or builds a set or bytearray: the
    /// pickle is not a plain value and is refused unread.
    Refused {
        /// The opcode's name (as Python's `pickletools` calls it).
        opcode: &'static str,
        /// Its offset in the pickle.
        at: usize,
    },
    /// Not a well-formed pickle: truncated, an unknown opcode, a length past the end, a
    /// stack that does not add up, bytes after `STOP`.
    Malformed(String),
    /// Larger or deeper than the [`Limits`] allow (the limit named).
    TooLarge(&'static str),
    /// A value with no JSON form (bytes, a non-string key, an integer beyond 64 bits, NaN,
    /// a top level that is not a dict); the session is not changed into something else.
    Unrepresentable(&'static str),
}

impl fmt::Display for PickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { opcode, at } => write!(
                f,
                "refused pickle: opcode {opcode} at byte {at} names a class, calls a function or builds a non-plain value; only dict, list, tuple, str, int, float, bool and None are read"
            ),
            Self::Malformed(why) => write!(f, "malformed pickle: {why}"),
            Self::TooLarge(limit) => write!(f, "pickle over the limit on {limit}"),
            Self::Unrepresentable(what) => write!(
                f,
                "the pickled session holds {what}, which a JSON session map cannot hold"
            ),
        }
    }
}

impl std::error::Error for PickleError {}

fn malformed(why: impl Into<String>) -> PickleError {
    PickleError::Malformed(why.into())
}

/// Reads a pickled `dict` of plain values as a session map.
///
/// # Errors
/// [`PickleError`]: refused, malformed, over `limits`, or not representable as JSON.
pub fn from_pickle(pickle: &[u8], limits: &Limits) -> Result<Map<String, Value>, PickleError> {
    vet(pickle, limits)?;
    let value =
        serde_pickle::value_from_slice(pickle, serde_pickle::DeOptions::new().decode_strings())
            .map_err(|e| malformed(e.to_string()))?;
    match value {
        Py::Dict(dict) => object(dict),
        _ => Err(PickleError::Unrepresentable(
            "a top level that is not a dict",
        )),
    }
}

/// Reads a pickled `str` (what Beaker's Redis backend stores: `pickle.dumps(value)` of the
/// session's text), under the same walk and limits as [`from_pickle`].
///
/// # Errors
/// [`PickleError`]: refused, malformed, over `limits`, or not a `str`.
pub fn text_from_pickle(pickle: &[u8], limits: &Limits) -> Result<String, PickleError> {
    vet(pickle, limits)?;
    let value =
        serde_pickle::value_from_slice(pickle, serde_pickle::DeOptions::new().decode_strings())
            .map_err(|e| malformed(e.to_string()))?;
    match value {
        Py::String(text) => Ok(text),
        _ => Err(PickleError::Unrepresentable(
            "a top level that is not a str",
        )),
    }
}

/// Writes `text` as a pickled `str` (protocol 3), the inverse of [`text_from_pickle`].
///
/// # Errors
/// [`PickleError::Malformed`] if the encoder fails (it does not for a `str`).
pub fn text_to_pickle(text: &str) -> Result<Vec<u8>, PickleError> {
    serde_pickle::value_to_vec(
        &Py::String(text.to_owned()),
        serde_pickle::SerOptions::new(),
    )
    .map_err(|e| malformed(e.to_string()))
}

fn object(dict: BTreeMap<HashableValue, Py>) -> Result<Map<String, Value>, PickleError> {
    dict.into_iter()
        .map(|(key, value)| match key {
            HashableValue::String(key) => Ok((key, to_json(value)?)),
            _ => Err(PickleError::Unrepresentable("a key that is not a string")),
        })
        .collect()
}

/// Writes a session map as a pickled `dict` (protocol 3).
///
/// # Errors
/// [`PickleError::Malformed`] if the encoder fails (it does not for a JSON map).
pub fn to_pickle(map: &Map<String, Value>) -> Result<Vec<u8>, PickleError> {
    let dict = map
        .iter()
        .map(|(k, v)| (HashableValue::String(k.clone()), to_python(v)))
        .collect::<BTreeMap<_, _>>();
    serde_pickle::value_to_vec(&Py::Dict(dict), serde_pickle::SerOptions::new())
        .map_err(|e| malformed(e.to_string()))
}

fn to_python(value: &Value) -> Py {
    match value {
        Value::Null => Py::None,
        Value::Bool(b) => Py::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Py::I64(i)
            } else if let Some(u) = n.as_u64() {
                Py::Int(u.into())
            } else {
                Py::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Py::String(s.clone()),
        Value::Array(items) => Py::List(items.iter().map(to_python).collect()),
        Value::Object(map) => Py::Dict(
            map.iter()
                .map(|(k, v)| (HashableValue::String(k.clone()), to_python(v)))
                .collect(),
        ),
    }
}

fn to_json(value: Py) -> Result<Value, PickleError> {
    Ok(match value {
        Py::None => Value::Null,
        Py::Bool(b) => Value::Bool(b),
        Py::I64(i) => Value::from(i),
        Py::Int(big) => {
            if let Ok(i) = i64::try_from(&big) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(&big) {
                Value::from(u)
            } else {
                return Err(PickleError::Unrepresentable("an integer beyond 64 bits"));
            }
        }
        Py::F64(f) => Value::Number(
            Number::from_f64(f).ok_or(PickleError::Unrepresentable("NaN or an infinity"))?,
        ),
        Py::String(s) => Value::String(s),
        Py::List(items) | Py::Tuple(items) => {
            Value::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Py::Dict(dict) => Value::Object(object(dict)?),
        Py::Bytes(_) => return Err(PickleError::Unrepresentable("bytes")),
        Py::Set(_) | Py::FrozenSet(_) => return Err(PickleError::Unrepresentable("a set")),
    })
}

/// What one decoded value weighs against [`Limits::max_expanded`], besides its text: about
/// the bytes a decoded value and its JSON counterpart take.
const VALUE_WEIGHT: u64 = 64;

/// The longest number in text (protocol 0): `-18446744073709551615L` is 22 bytes, a
/// float's repr at most 24.
const MAX_NUMBER_TEXT: usize = 32;

/// What a container the walk has built so far holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar,
    List,
    Dict,
    Tuple,
}

/// A value the walk has seen: its own weight and its children (by index).
struct Node {
    kind: Kind,
    weight: u64,
    children: Vec<usize>,
}

#[derive(Clone, Copy)]
enum Item {
    Mark,
    Node(usize),
}

/// Walks the opcodes as Python's unpickler would, building only the shape of the value:
/// refuses what is not plain data, checks lengths and the stack, and bounds the expanded
/// value's size and depth.
fn vet(pickle: &[u8], limits: &Limits) -> Result<(), PickleError> {
    if pickle.len() > limits.max_bytes {
        return Err(PickleError::TooLarge("bytes"));
    }
    let mut walk = Walk {
        input: pickle,
        at: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        memo: BTreeMap::new(),
    };
    let root = walk.run()?;
    if walk.at != pickle.len() {
        return Err(malformed("bytes after STOP"));
    }
    expanded(&walk.nodes, root, limits)
}

struct Walk<'a> {
    input: &'a [u8],
    at: usize,
    nodes: Vec<Node>,
    stack: Vec<Item>,
    memo: BTreeMap<u64, usize>,
}

impl Walk<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| malformed(format!("a length of {n} runs past the end")))?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A counted argument: its length in `n` little-endian bytes, then that many bytes.
    fn counted(&mut self, n: usize) -> Result<usize, PickleError> {
        let len = self.le(n)?;
        let len = usize::try_from(len).map_err(|_| malformed("a length past the end"))?;
        self.take(len)?;
        Ok(len)
    }

    /// A newline-terminated argument (protocol 0).
    fn line(&mut self) -> Result<&[u8], PickleError> {
        let rest = &self.input[self.at..];
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| malformed("a text argument without its newline"))?;
        self.at += end + 1;
        Ok(&rest[..end])
    }

    fn leaf(&mut self, weight: usize) {
        self.push_node(Kind::Scalar, weight as u64, Vec::new());
    }

    fn push_node(&mut self, kind: Kind, weight: u64, children: Vec<usize>) {
        self.nodes.push(Node {
            kind,
            weight: weight.saturating_add(VALUE_WEIGHT),
            children,
        });
        self.stack.push(Item::Node(self.nodes.len() - 1));
    }

    fn pop(&mut self) -> Result<usize, PickleError> {
        match self.stack.pop() {
            Some(Item::Node(n)) => Ok(n),
            _ => Err(malformed("a value expected on the stack")),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<usize>, PickleError> {
        let mark = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or_else(|| malformed("no mark on the stack"))?;
        let items = self
            .stack
            .drain(mark..)
            .filter_map(|item| match item {
                Item::Node(n) => Some(n),
                Item::Mark => None,
            })
            .collect();
        Ok(items)
    }

    fn top(&self, kind: Kind) -> Result<usize, PickleError> {
        match self.stack.last() {
            Some(Item::Node(n)) if self.nodes[*n].kind == kind => Ok(*n),
            _ => Err(malformed("a container of the wrong kind on the stack")),
        }
    }

    fn memo_put(&mut self, index: u64) -> Result<(), PickleError> {
        match self.stack.last() {
            Some(Item::Node(n)) => {
                self.memo.insert(index, *n);
                Ok(())
            }
            _ => Err(malformed("memoizing without a value")),
        }
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        let n = *self
            .memo
            .get(&index)
            .ok_or_else(|| malformed(format!("memo {index} was never stored")))?;
        self.stack.push(Item::Node(n));
        Ok(())
    }

    fn decimal(&mut self) -> Result<u64, PickleError> {
        let line = self.line()?;
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| malformed("a memo index that is not a number"))
    }

    /// The root value, at `STOP`.
    fn run(&mut self) -> Result<usize, PickleError> {
        loop {
            let at = self.at;
            let op = *self.take(1)?.first().unwrap_or(&0);
            match op {
                b'\x80' => {
                    let version = self.le(1)?;
                    if version > 5 {
                        return Err(malformed(format!("protocol {version} is unknown")));
                    }
                }
                b'\x95' => {
                    // FRAME: a length the rest must hold; frames are otherwise transparent.
                    let len = self.le(8)?;
                    if len > (self.input.len() - self.at) as u64 {
                        return Err(malformed("a frame runs past the end"));
                    }
                }
                b'.' => {
                    let root = self.pop()?;
                    if !self.stack.is_empty() {
                        return Err(malformed("values left on the stack at STOP"));
                    }
                    return Ok(root);
                }
                b'(' => self.stack.push(Item::Mark),
                b'0' => {
                    self.stack
                        .pop()
                        .ok_or_else(|| malformed("POP on an empty stack"))?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = *self
                        .stack
                        .last()
                        .ok_or_else(|| malformed("DUP on an empty stack"))?;
                    self.stack.push(top);
                }
                // Constants and numbers.
                b'N' | b'\x88' | b'\x89' => self.leaf(0),
                b'K' => {
                    self.take(1)?;
                    self.leaf(0);
                }
                b'M' => {
                    self.take(2)?;
                    self.leaf(0);
                }
                b'J' => {
                    self.take(4)?;
                    self.leaf(0);
                }
                b'G' => {
                    self.take(8)?;
                    self.leaf(0);
                }
                // Numbers as text and long integers: longer than any value of 64 bits (or
                // any float's repr) is refused here, before a decimal parse that grows with
                // the square of the digits.
                b'I' | b'L' | b'F' => {
                    if self.line()?.len() > MAX_NUMBER_TEXT {
                        return Err(PickleError::Unrepresentable("an integer beyond 64 bits"));
                    }
                    self.leaf(0);
                }
                b'\x8a' | b'\x8b' => {
                    let len = self.counted(if op == b'\x8a' { 1 } else { 4 })?;
                    if len > 9 {
                        return Err(PickleError::Unrepresentable("an integer beyond 64 bits"));
                    }
                    self.leaf(0);
                }
                // Strings and bytes.
                b'S' | b'V' => {
                    let len = self.line()?.len();
                    self.leaf(len);
                }
                b'U' | b'C' | b'\x8c' => {
                    let len = self.counted(1)?;
                    self.leaf(len);
                }
                b'T' | b'X' | b'B' => {
                    let len = self.counted(4)?;
                    self.leaf(len);
                }
                b'\x8d' | b'\x8e' => {
                    let len = self.counted(8)?;
                    self.leaf(len);
                }
                // Containers.
                b']' => self.push_node(Kind::List, 0, Vec::new()),
                b'}' => self.push_node(Kind::Dict, 0, Vec::new()),
                b')' => self.push_node(Kind::Tuple, 0, Vec::new()),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push_node(Kind::List, 0, items);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push_node(Kind::Tuple, 0, items);
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(malformed("a dict of an odd number of items"));
                    }
                    self.push_node(Kind::Dict, 0, items);
                }
                b'\x85' | b'\x86' | b'\x87' => {
                    let n = usize::from(op - b'\x84');
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                    items.reverse();
                    self.push_node(Kind::Tuple, 0, items);
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top(Kind::List)?;
                    self.nodes[list].children.push(item);
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top(Kind::List)?;
                    self.nodes[list].children.extend(items);
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    let dict = self.top(Kind::Dict)?;
                    self.nodes[dict].children.extend([key, value]);
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    if items.len() % 2 != 0 {
                        return Err(malformed("SETITEMS with an odd number of items"));
                    }
                    let dict = self.top(Kind::Dict)?;
                    self.nodes[dict].children.extend(items);
                }
                // The memo.
                b'p' => {
                    let index = self.decimal()?;
                    self.memo_put(index)?;
                }
                b'q' => {
                    let index = self.le(1)?;
                    self.memo_put(index)?;
                }
                b'r' => {
                    let index = self.le(4)?;
                    self.memo_put(index)?;
                }
                b'\x94' => {
                    let index = self.memo.len() as u64;
                    self.memo_put(index)?;
                }
                b'g' => {
                    let index = self.decimal()?;
                    self.memo_get(index)?;
                }
                b'h' => {
                    let index = self.le(1)?;
                    self.memo_get(index)?;
                }
                b'j' => {
                    let index = self.le(4)?;
                    self.memo_get(index)?;
                }
                _ => {
                    return Err(match refused(op) {
                        Some(opcode) => PickleError::Refused { opcode, at },
                        None => malformed(format!("unknown opcode 0x{op:02x} at byte {at}")),
                    });
                }
            }
        }
    }
}

/// The name of an opcode that is refused, or `None` for one that does not exist.
fn refused(op: u8) -> Option<&'static str> {
    Some(match op {
        b'c' => "GLOBAL",
        b'\x93' => "STACK_GLOBAL",
        b'R' => "REDUCE",
        b'b' => "BUILD",
        b'i' => "INST",
        b'o' => "OBJ",
        b'\x81' => "NEWOBJ",
        b'\x92' => "NEWOBJ_EX",
        b'\x82' => "EXT1",
        b'\x83' => "EXT2",
        b'\x84' => "EXT4",
        b'P' => "PERSID",
        b'Q' => "BINPERSID",
        b'\x97' => "NEXT_BUFFER",
        b'\x98' => "READONLY_BUFFER",
        b'\x8f' => "EMPTY_SET",
        b'\x90' => "ADDITEMS",
        b'\x91' => "FROZENSET",
        b'\x96' => "BYTEARRAY8",
        _ => return None,
    })
}

/// The size and depth of the value rooted at `root` with every reference expanded, by an
/// iterative walk of the graph (memoized per node; a cycle is refused): within `limits`.
fn expanded(nodes: &[Node], root: usize, limits: &Limits) -> Result<(), PickleError> {
    #[derive(Clone, Copy)]
    enum State {
        New,
        Open,
        Done { size: u64, depth: usize },
    }
    let mut state = vec![State::New; nodes.len()];
    let mut work = vec![root];
    while let Some(&n) = work.last() {
        match state[n] {
            State::Done { .. } => {
                work.pop();
            }
            State::New => {
                state[n] = State::Open;
                for &child in &nodes[n].children {
                    match state[child] {
                        State::New => work.push(child),
                        State::Open => {
                            return Err(PickleError::Unrepresentable(
                                "a value that contains itself",
                            ));
                        }
                        State::Done { .. } => {}
                    }
                }
            }
            State::Open => {
                let (mut size, mut depth) = (nodes[n].weight, 0);
                for &child in &nodes[n].children {
                    let State::Done { size: s, depth: d } = state[child] else {
                        return Err(PickleError::Unrepresentable("a value that contains itself"));
                    };
                    size = size.saturating_add(s);
                    depth = depth.max(d);
                }
                let depth = depth + usize::from(nodes[n].kind != Kind::Scalar);
                if size > limits.max_expanded {
                    return Err(PickleError::TooLarge("expanded size"));
                }
                if depth > limits.max_depth {
                    return Err(PickleError::TooLarge("depth"));
                }
                state[n] = State::Done { size, depth };
                work.pop();
            }
        }
    }
    Ok(())
}

/// For the fuzz target: `from_pickle` under default limits must return, never panic, and
/// what it reads must write and read back the same.
#[cfg(fuzzing)]
pub(crate) fn fuzz(data: &[u8]) {
    if let Ok(map) = from_pickle(data, &Limits::default()) {
        let again = to_pickle(&map).map(|p| from_pickle(&p, &Limits::default()));
        assert!(
            matches!(again, Ok(Ok(ref m)) if *m == map),
            "a read map must round-trip"
        );
    }
}
