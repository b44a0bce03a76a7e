//! Byte tests on eight bytes at once in a `u64` (SIMD within a register): portable, no
//! `unsafe`, and exact (no false positives), so the first set bit is the first match.

/// `byte` in every byte of a word.
pub(super) const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// The high bit of each byte of `word` that equals `byte` (exact, no false positives).
pub(super) const fn equal_bytes(word: u64, byte: u8) -> u64 {
    let x = word ^ splat(byte);
    let low7 = splat(0x7F);
    !(((x & low7).wrapping_add(low7)) | x | low7)
}

/// The high bits of a word's bytes, gathered into its low 8 bits (byte i to bit i).
pub(super) const fn bit_per_byte(high_bits: u64) -> u64 {
    (high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The high bit of each byte of `word` below 0x20 (a control character).
pub(super) const fn control_bytes(word: u64) -> u64 {
    equal_bytes(word & splat(0xE0), 0)
}

/// Eight bytes from `bytes[at..]`, little-endian, if there are eight.
#[inline]
pub(super) fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..)?.first_chunk::<8>()?;
    Some(u64::from_le_bytes(*chunk))
}
