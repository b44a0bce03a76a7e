//! The session's data as loaded: a JSON object whose values stay unparsed text until they
//! are read.
//!
//! Decoding an authentic cookie checks the whole object ([`json::scan_object`] validates
//! every value while measuring it) but builds no values: each entry records where its key
//! and value lie in the object's text. A typed read deserializes straight from that slice;
//! only a value handed out for mutation (or removed) is turned into a [`Value`] and kept.
//! Writing the map back copies unchanged values byte for byte.
//!
//! Change detection compares what each written key holds now with its value as loaded, so
//! writing an equal value is not a change, exactly as with a full map, but only the keys
//! that were written are ever parsed for it.

use std::ops::Range;
use std::sync::Arc;

use serde::de;
use serde_json::Value;

use crate::wire::error::{DecodeError, JsonError};
use crate::wire::json;

/// A session's data, lazily parsed. Keys are kept sorted and unique, like the
/// `serde_json::Map` it stands for (for a repeated key, the last one wins, as there).
#[derive(Clone, Default)]
pub(crate) struct LazyMap {
    /// The object's text as loaded (empty for a new session). Shared: snapshots are cheap.
    text: Arc<str>,
    /// Sorted by key, each key once.
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    key: KeyText,
    /// The value as loaded: a slice of `text`. `None` for a key added since.
    loaded: Option<Range<usize>>,
    current: Current,
}

/// Where a key's text is: in the loaded text (the common case: keys without escapes) or
/// on its own.
#[derive(Clone)]
enum KeyText {
    Loaded(Range<usize>),
    Owned(Box<str>),
}

#[derive(Clone)]
enum Current {
    /// Still the loaded text.
    Loaded,
    /// Parsed for mutation, or written.
    Value(Value),
    /// Removed.
    Removed,
}

impl LazyMap {
    /// Checks that `json` is one JSON object nested at most `max_depth` deep and records
    /// where its entries are, without parsing the values into anything.
    ///
    /// # Errors
    /// [`DecodeError::TooDeep`], or [`DecodeError::Payload`] if `json` is not UTF-8 or not
    /// a well-formed JSON object.
    pub(crate) fn parse(json: &[u8], max_depth: usize) -> Result<Self, DecodeError> {
        let text = std::str::from_utf8(json).map_err(|_| {
            DecodeError::Payload(JsonError::own("the session data is not valid UTF-8"))
        })?;
        let mut entries = Vec::with_capacity(8);
        json::scan_object(json, max_depth, |member| {
            let key = if member.key_escaped {
                // With its quotes: a JSON string, which serde_json decodes (and checks that
                // its escapes make valid UTF-8).
                let quoted = text.get(member.key.start.saturating_sub(1)..member.key.end + 1);
                let key: String = serde_json::from_str(quoted.unwrap_or_default())
                    .map_err(|e| DecodeError::Payload(e.into()))?;
                KeyText::Owned(key.into_boxed_str())
            } else {
                KeyText::Loaded(member.key)
            };
            entries.push(Entry {
                key,
                loaded: Some(member.value),
                current: Current::Loaded,
            });
            Ok(())
        })?;
        // This crate writes keys sorted and once each, so one pass usually proves the order
        // (the sort and dedup cost a small session's read 380 instructions). Otherwise:
        // a stable sort, then the last of equal keys kept (serde_json's `Map` semantics).
        if !entries.is_sorted_by(|a, b| a.key(text) < b.key(text)) {
            entries.sort_by(|a, b| a.key(text).cmp(b.key(text)));
            entries.dedup_by(|later, kept| {
                let same = later.key(text) == kept.key(text);
                if same {
                    std::mem::swap(later, kept);
                }
                same
            });
        }
        Ok(Self {
            text: Arc::from(text),
            entries,
        })
    }

    /// A map holding `map`'s entries as if they had been loaded (for sessions read from
    /// another format).
    #[cfg(feature = "beaker")]
    pub(crate) fn from_map(map: &serde_json::Map<String, Value>) -> Result<Self, DecodeError> {
        let json = serde_json::to_vec(map).map_err(|e| DecodeError::Payload(e.into()))?;
        Self::parse(&json, usize::MAX)
    }

    /// The same keys and values as loaded, forgetting every change.
    pub(crate) fn as_loaded(&self) -> Self {
        let entries = self
            .entries
            .iter()
            .filter(|e| e.loaded.is_some())
            .map(|e| Entry {
                current: Current::Loaded,
                ..e.clone()
            })
            .collect();
        Self {
            text: Arc::clone(&self.text),
            entries,
        }
    }

    /// The value under `key` as a `T`, deserialized from its text (or from its parsed
    /// value, if it has been written or handed out for mutation).
    pub(crate) fn get<T: de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Option<Result<T, serde_json::Error>> {
        let entry = &self.entries[self.find(key).ok()?];
        match &entry.current {
            Current::Loaded => Some(serde_json::from_str(self.raw(entry)?)),
            Current::Value(value) => Some(T::deserialize(value)),
            Current::Removed => None,
        }
    }

    /// The value under `key`, parsed and kept, to change in place; `None` also when the
    /// stored JSON has no [`Value`] (see [`loaded_value`](Self::loaded_value)), which then
    /// stays as it is.
    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let at = self.find(key).ok()?;
        let loaded = match &self.entries[at].current {
            Current::Removed => return None,
            Current::Value(_) => None,
            Current::Loaded => Some(self.loaded_value(&self.entries[at])?),
        };
        let entry = &mut self.entries[at];
        if let Some(value) = loaded {
            entry.current = Current::Value(value);
        }
        match &mut entry.current {
            Current::Value(value) => Some(value),
            _ => None,
        }
    }

    /// Stores `value` under `key`.
    pub(crate) fn insert(&mut self, key: &str, value: Value) {
        match self.find(key) {
            Ok(at) => self.entries[at].current = Current::Value(value),
            Err(at) => self.entries.insert(
                at,
                Entry {
                    key: KeyText::Owned(key.into()),
                    loaded: None,
                    current: Current::Value(value),
                },
            ),
        }
    }

    /// Removes `key`, returning its value (if it has a [`Value`]).
    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.find(key).ok()?;
        let entry = &mut self.entries[at];
        match std::mem::replace(&mut entry.current, Current::Removed) {
            Current::Loaded => self.loaded_value(&self.entries[at]),
            Current::Value(value) => Some(value),
            Current::Removed => None,
        }
    }

    /// Removes every key.
    pub(crate) fn clear(&mut self) {
        for entry in &mut self.entries {
            entry.current = Current::Removed;
        }
    }

    /// The keys present, in order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .filter(|e| !matches!(e.current, Current::Removed))
            .map(|e| e.key(&self.text))
    }

    pub(crate) fn contains_key(&self, key: &str) -> bool {
        self.find(key)
            .is_ok_and(|at| !matches!(self.entries[at].current, Current::Removed))
    }

    pub(crate) fn len(&self) -> usize {
        self.keys().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys().next().is_none()
    }

    /// Whether the map differs from what was loaded: a key added or removed, or a value
    /// that is no longer equal to its loaded value (or whose loaded value has no [`Value`]
    /// to compare with). Parses only the written keys' values.
    pub(crate) fn changed(&self) -> bool {
        self.entries
            .iter()
            .any(|entry| match (&entry.loaded, &entry.current) {
                (_, Current::Loaded) | (None, Current::Removed) => false,
                (Some(_), Current::Removed) | (None, Current::Value(_)) => true,
                (Some(_), Current::Value(value)) => {
                    self.loaded_value(entry).as_ref() != Some(value)
                }
            })
    }

    /// Applies this map's changes (each key written or removed since loading, whose value
    /// differs from its loaded one) to `other`: a request's own changes re-applied over a
    /// newer state saved by another request. Keys this map did not change keep `other`'s
    /// values. Keys `skip` names are left to the caller (changes that replay).
    pub(crate) fn replay_changes_onto(&self, other: &mut Self, skip: impl Fn(&str) -> bool) {
        for entry in &self.entries {
            let key = entry.key(&self.text);
            if skip(key) {
                continue;
            }
            match (&entry.loaded, &entry.current) {
                (_, Current::Loaded) | (None, Current::Removed) => {}
                (Some(_), Current::Removed) => {
                    other.remove(key);
                }
                (loaded, Current::Value(value)) => {
                    let unchanged =
                        loaded.is_some() && self.loaded_value(entry).as_ref() == Some(value);
                    if !unchanged {
                        other.insert(key, value.clone());
                    }
                }
            }
        }
    }

    /// Whether another writer changed a key that this map changed too: for some key written
    /// or removed here, `newer` holds something other than what this map loaded. Keys
    /// `skip` names (changes that replay, which merge) do not count.
    pub(crate) fn overlaps(&self, newer: &Self, skip: impl Fn(&str) -> bool) -> bool {
        self.entries.iter().any(|entry| {
            let changed = match (&entry.loaded, &entry.current) {
                (_, Current::Loaded) | (None, Current::Removed) => false,
                (Some(_), Current::Removed) | (None, Current::Value(_)) => true,
                (Some(_), Current::Value(value)) => {
                    self.loaded_value(entry).as_ref() != Some(value)
                }
            };
            let key = entry.key(&self.text);
            changed
                && !skip(key)
                && self.loaded_value(entry) != newer.get::<Value>(key).and_then(Result::ok)
        })
    }

    /// Writes the map as a compact JSON object: unchanged values as their loaded bytes.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        out.push(b'{');
        let mut first = true;
        for entry in &self.entries {
            let raw = match &entry.current {
                Current::Removed => continue,
                Current::Loaded => self.raw(entry),
                Current::Value(_) => None,
            };
            if !first {
                out.push(b',');
            }
            first = false;
            serde_json::to_writer(&mut *out, entry.key(&self.text))?;
            out.push(b':');
            match (&entry.current, raw) {
                (Current::Value(value), _) => serde_json::to_writer(&mut *out, value)?,
                (_, Some(raw)) => out.extend_from_slice(raw.as_bytes()),
                (_, None) => out.extend_from_slice(b"null"),
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// The whole map, parsed.
    ///
    /// # Errors
    /// serde_json's error for a loaded value that has no [`Value`].
    #[cfg(feature = "beaker")]
    pub(crate) fn to_map(&self) -> Result<serde_json::Map<String, Value>, serde_json::Error> {
        let mut map = serde_json::Map::new();
        for entry in &self.entries {
            let value = match &entry.current {
                Current::Loaded => serde_json::from_str(self.raw(entry).unwrap_or_default())?,
                Current::Value(value) => value.clone(),
                Current::Removed => continue,
            };
            map.insert(entry.key(&self.text).to_owned(), value);
        }
        Ok(map)
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries
            .binary_search_by(|e| e.key(&self.text).cmp(key))
    }

    fn raw(&self, entry: &Entry) -> Option<&str> {
        self.text.get(entry.loaded.clone()?)
    }

    /// The loaded value of `entry`, parsed. `None` for valid JSON that a [`Value`] cannot
    /// hold (a number beyond `f64`, an unpaired surrogate escape): only a key holder can
    /// write such a cookie, and its text is then kept as it is rather than altered.
    fn loaded_value(&self, entry: &Entry) -> Option<Value> {
        serde_json::from_str(self.raw(entry)?).ok()
    }
}

impl Entry {
    fn key<'a>(&'a self, text: &'a str) -> &'a str {
        match &self.key {
            KeyText::Loaded(span) => text.get(span.clone()).unwrap_or_default(),
            KeyText::Owned(key) => key,
        }
    }
}

/// A check for the fuzz target `json_scan`: [`LazyMap::parse`] accepts exactly what
/// serde_json accepts as an object (keys as strings, values validated but ignored), and
/// each value it records is exactly one JSON value. Compiled only under `cargo fuzz`.
#[cfg(fuzzing)]
pub(crate) fn check_against_serde_json(data: &[u8]) {
    use std::collections::BTreeSet;

    // serde_json validates ignored values without a nesting limit; ours has its parser's.
    if !json::depth_within(data, 127) {
        let _ = LazyMap::parse(data, usize::MAX);
        return;
    }
    let ours = LazyMap::parse(data, usize::MAX);
    let theirs = reference_keys(data);
    match (&ours, &theirs) {
        (Ok(map), Ok(keys)) => {
            let ours: BTreeSet<&str> = map.keys().collect();
            let theirs: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
            assert_eq!(ours, theirs);
            for entry in &map.entries {
                let raw = map.raw(entry).unwrap_or_default();
                assert!(
                    serde_json::from_str::<de::IgnoredAny>(raw).is_ok(),
                    "not one value: {raw:?}"
                );
                assert_eq!(raw.trim(), raw);
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!(
            "ours {:?} vs serde_json {:?} on {:?}",
            ours.map(|m| m.len()),
            theirs,
            String::from_utf8_lossy(data)
        ),
    }
}

/// The keys serde_json finds in an object, values validated but not built.
#[cfg(any(test, fuzzing))]
fn reference_keys(data: &[u8]) -> Result<Vec<String>, serde_json::Error> {
    struct Keys;
    impl<'de> de::Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
            let mut keys = Vec::new();
            while let Some((key, de::IgnoredAny)) = map.next_entry::<String, de::IgnoredAny>()? {
                keys.push(key);
            }
            Ok(keys)
        }
    }
    let text = std::str::from_utf8(data).map_err(de::Error::custom)?;
    let mut parser = serde_json::Deserializer::from_str(text);
    let keys = de::Deserializer::deserialize_map(&mut parser, Keys)?;
    parser.end()?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::value::RawValue;

    use super::*;

    /// What serde_json makes of an object: each key (the last of repeats) with its value's
    /// exact text, or an error.
    fn reference(text: &str) -> Option<BTreeMap<String, String>> {
        let members: Vec<(String, &RawValue)> =
            serde_json::from_str::<BTreeMap<String, &RawValue>>(text)
                .ok()?
                .into_iter()
                .collect();
        reference_keys(text.as_bytes()).ok()?;
        Some(
            members
                .into_iter()
                .map(|(k, v)| (k, v.get().to_owned()))
                .collect(),
        )
    }

    fn ours(text: &str) -> Option<BTreeMap<String, String>> {
        let map = LazyMap::parse(text.as_bytes(), usize::MAX).ok()?;
        Some(
            map.entries
                .iter()
                .map(|e| (e.key(&map.text).to_owned(), map.raw(e).unwrap().to_owned()))
                .collect(),
        )
    }

    /// JSON-like text: well-formed values, odd but valid spellings, and near misses.
    fn value() -> impl Strategy<Value = String> {
        let atom = prop_oneof![
            prop::sample::select(vec![
                "null",
                "true",
                "false",
                "0",
                "-0",
                "12",
                "-3.25",
                "1e5",
                "2E-3",
                "4.5e+06",
                "01",
                "1.",
                ".5",
                "-",
                "1e",
                "+1",
                "nul",
                "tru",
                "NaN",
                "\"\\ud800\"",
                "\"\\u00e9\"",
                "\"\\uZZZZ\"",
                "\"\\/\\b\\f\\n\\r\\t\"",
                "\"\\u12\"",
                "\"\\x\"",
                "\"a\\\"b\"",
                "\"\t\"",
                "\"é\"",
                "\"\"",
            ])
            .prop_map(str::to_owned),
            "[a-z \\\\\"/\\[\\]{}\u{e9}]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
        ];
        let space = prop::sample::select(vec!["", "", "", " ", "\n\t", "\r "]);
        atom.prop_recursive(5, 48, 6, move |inner| {
            let key = prop_oneof![
                "[a-c]{0,2}".prop_map(|s| format!("\"{s}\"")),
                Just("\"\\u0061\"".to_owned()),
                Just("\"\\ud800\"".to_owned()),
            ];
            prop_oneof![
                (prop::collection::vec(inner.clone(), 0..5), space.clone())
                    .prop_map(|(items, s)| format!("[{s}{}{s}]", items.join(&format!("{s},{s}")))),
                (prop::collection::vec((key, inner), 0..5), space.clone()).prop_map(
                    |(members, s)| {
                        let members: Vec<String> = members
                            .iter()
                            .map(|(k, v)| format!("{k}{s}:{s}{v}"))
                            .collect();
                        format!("{{{s}{}{s}}}", members.join(","))
                    }
                ),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Same verdict and same members as serde_json, on objects built from valid and
        /// invalid parts, and after damaging one byte.
        #[test]
        fn agrees_with_serde_json(
            text in value(),
            damage in proptest::option::of((any::<prop::sample::Index>(), prop::sample::select(
                vec!["", ",", "]", "}", "\"", "\\", ":", " ", "0", "\u{1}"]))),
        ) {
            let mut text = text;
            if let Some((at, with)) = damage {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let end = (at + 1..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(at);
                text.replace_range(at..end, with);
            }
            prop_assert_eq!(ours(&text), reference(&text), "{}", text);
        }
    }

    #[test]
    fn nesting_stops_where_serde_json_stops_and_at_the_configured_depth() {
        let nested = |depth: usize| {
            format!(
                "{{\"a\":{}1{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        // serde_json parses 127 nested containers into values, not 128.
        assert!(serde_json::from_str::<Value>(&nested(127)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(128)).is_err());
        assert!(LazyMap::parse(nested(127).as_bytes(), usize::MAX).is_ok());
        assert!(matches!(
            LazyMap::parse(nested(128).as_bytes(), usize::MAX),
            Err(DecodeError::Payload(_))
        ));
        assert!(LazyMap::parse(nested(5).as_bytes(), 5).is_ok());
        assert!(matches!(
            LazyMap::parse(nested(6).as_bytes(), 5),
            Err(DecodeError::TooDeep { limit: 5 })
        ));
        assert!(matches!(
            LazyMap::parse(b"{}", 0),
            Err(DecodeError::TooDeep { limit: 0 })
        ));
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for text in [
            "",
            " ",
            "[]",
            "1",
            "{} {}",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "{a:1}",
            "{\"a\":1",
        ] {
            assert!(LazyMap::parse(text.as_bytes(), 32).is_err(), "{text:?}");
        }
        assert!(LazyMap::parse(b"{\"a\":\"\xff\"}", 32).is_err());
        assert!(LazyMap::parse(b" {\"a\" : [ 1 , {} ] }\n", 32).is_ok());
    }
}
