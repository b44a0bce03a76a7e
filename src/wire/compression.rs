//! Raw deflate (RFC 1951) of a cookie's JSON, and its bounded inverse.
//!
//! The algorithm and level were chosen by measurement on the benchmark payloads
//! (`bench/compression`, BENCHMARKS.md): deflate at level 2 is as small as level 6-9 on
//! session JSON (2.1x on the medium payload, 5.3x on the large one) at two thirds of the
//! cost, and every language has an inflater (Python's `zlib` with `wbits=-15`). The
//! compressor and decompressor states are kept per thread: building zlib's state costs
//! more than compressing a session.

use std::cell::RefCell;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The deflate level: as small as 6-9 on session JSON, a third cheaper.
const LEVEL: u32 = 2;

/// JSON shorter than this is not worth trying: deflate saves at most a few bytes on it
/// (2 of the small payload's 78) at the cost of a compressor reset (~4 µs).
pub(crate) const MIN_INPUT: usize = 128;

thread_local! {
    static COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::new(LEVEL), false));
    static DECOMPRESSOR: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Appends the raw deflate stream of `input` to `out` and returns `true`, if that stream is
/// shorter than `input`; otherwise leaves `out` as it was and returns `false`.
pub(crate) fn compress(input: &[u8], out: &mut Vec<u8>) -> bool {
    if input.len() < MIN_INPUT {
        return false;
    }
    let start = out.len();
    // Room for one byte less than the input: a stream that needs more is not worth sending,
    // and zlib reports it by not reaching the stream's end.
    out.resize(start + input.len() - 1, 0);
    let written = with(&COMPRESSOR, |c| {
        c.reset();
        match c.compress(input, &mut out[start..], FlushCompress::Finish) {
            Ok(Status::StreamEnd) => usize::try_from(c.total_out()).ok(),
            _ => None,
        }
    })
    .flatten();
    match written {
        Some(n) => {
            out.truncate(start + n);
            true
        }
        None => {
            out.truncate(start);
            false
        }
    }
}

/// Why a compressed payload could not be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// It inflates to more than the limit.
    TooLarge,
    /// It is not one complete raw deflate stream (or has bytes after its end).
    Corrupt,
}

/// Appends the inflation of the raw deflate stream `input` to `out`, never letting `out`
/// hold more than `limit` inflated bytes (plus one, to see the limit passed): the buffer
/// grows in steps and the stream is refused as soon as it passes the limit, so a small
/// cookie cannot make the server allocate more than the configured maximum session size.
/// On error `out` is left as it was.
pub(crate) fn inflate(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
    let start = out.len();
    let result = with(&DECOMPRESSOR, |d| {
        d.reset(false);
        let ceiling = limit.saturating_add(1);
        // Session JSON inflates 2-8x; start there and double.
        let mut size = input.len().saturating_mul(8).max(1024).min(ceiling);
        let (mut consumed, mut filled) = (0, 0);
        loop {
            // Exact: the default growth would double past the limit.
            out.reserve_exact((start + size).saturating_sub(out.len()));
            out.resize(start + size, 0);
            let before = (d.total_in(), d.total_out());
            let status = d.decompress(
                &input[consumed..],
                &mut out[start + filled..],
                FlushDecompress::Finish,
            );
            consumed += usize::try_from(d.total_in() - before.0).unwrap_or(usize::MAX);
            filled += usize::try_from(d.total_out() - before.1).unwrap_or(usize::MAX);
            if filled > limit {
                return Err(InflateError::TooLarge);
            }
            match status {
                Ok(Status::StreamEnd) if consumed == input.len() => return Ok(filled),
                // The output is full and the stream goes on: offer more, up to the ceiling.
                Ok(_) if filled == size => size = size.saturating_mul(2).min(ceiling),
                // The input ended before the stream did, bytes follow its end, or it is
                // not deflate at all.
                _ => return Err(InflateError::Corrupt),
            }
        }
    })
    .unwrap_or(Err(InflateError::Corrupt));
    match result {
        Ok(filled) => {
            out.truncate(start + filled);
            Ok(())
        }
        Err(error) => {
            out.truncate(start);
            Err(error)
        }
    }
}

/// Runs `f` on the thread's compressor or decompressor; `None` on re-entrant use (which
/// the codec never does).
fn with<S, R>(
    state: &'static std::thread::LocalKey<RefCell<S>>,
    f: impl FnOnce(&mut S) -> R,
) -> Option<R> {
    state.with(|cell| cell.try_borrow_mut().ok().map(|mut s| f(&mut s)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn json(n: usize) -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| format!("{{\"sku\":\"SKU-{i}\",\"qty\":1}}"))
            .collect();
        format!("[{}]", items.join(",")).into_bytes()
    }

    #[test]
    fn round_trips_and_only_when_smaller() {
        for n in [0, 3, 10, 100, 2000] {
            let input = json(n);
            let mut packed = b"prefix".to_vec();
            if compress(&input, &mut packed) {
                assert!(packed.len() - 6 < input.len());
                let mut back = b"kept".to_vec();
                inflate(&packed[6..], &mut back, input.len()).unwrap();
                assert_eq!(&back[4..], &input[..]);
            } else {
                assert_eq!(packed, b"prefix", "n = {n}");
                assert!(input.len() < 200, "n = {n} should compress");
            }
        }
        // Random bytes do not shrink: nothing is appended.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        let mut out = Vec::new();
        assert!(!compress(&noise, &mut out));
        assert!(out.is_empty());
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let input = vec![b'a'; 1 << 20];
        let mut packed = Vec::new();
        assert!(compress(&input, &mut packed));
        assert!(packed.len() < 2048, "a megabyte of one letter packs small");
        let mut out = b"x".to_vec();
        assert_eq!(
            inflate(&packed, &mut out, 65_536),
            Err(InflateError::TooLarge)
        );
        assert_eq!(out, b"x");
        assert!(out.capacity() <= 65_538 + 1, "grew to {}", out.capacity());
        // Exactly at the limit is fine.
        let mut out = Vec::new();
        inflate(&packed, &mut out, 1 << 20).unwrap();
        assert_eq!(out.len(), 1 << 20);
    }

    #[test]
    fn corrupt_and_truncated_streams_are_refused() {
        let input = json(200);
        let mut packed = Vec::new();
        assert!(compress(&input, &mut packed));
        let mut out = Vec::new();
        for cut in [0, 1, packed.len() / 2, packed.len() - 1] {
            assert_eq!(
                inflate(&packed[..cut], &mut out, 1 << 16),
                Err(InflateError::Corrupt),
                "cut at {cut}"
            );
        }
        let mut trailing = packed.clone();
        trailing.push(0);
        assert_eq!(
            inflate(&trailing, &mut out, 1 << 16),
            Err(InflateError::Corrupt)
        );
        assert_eq!(
            inflate(&[0xff; 40], &mut out, 1 << 16),
            Err(InflateError::Corrupt)
        );
        assert!(out.is_empty());
    }
}
