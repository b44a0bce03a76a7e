//! XAES-256-GCM (C2SP): AES-256-GCM under a key derived per nonce, so that random 192-bit
//! nonces are safe for far more messages than AES-GCM's random 96-bit ones.
//!
//! A composition of RustCrypto's `aes` and `aes-gcm`, following the specification
//! (<https://c2sp.org/XAES-256-GCM>): the derived key is two AES-256 blocks under the
//! master key (a CMAC-based KDF), used by AES-GCM with the nonce's last 12 bytes. Unlike
//! the `xaes-256-gcm` crate, the per-message GCM runs over the encrypt-only `Aes256Enc`:
//! GCM never uses AES decryption, so expanding its round keys for every cookie (as
//! `Aes256Gcm::new` does) was wasted work. Checked against the specification's vectors
//! below and, through the cookie format, against tests/vectors/v2.json.

use aes::Aes256Enc;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::AesGcm;
use aes_gcm::aead::AeadInOut;
use aes_gcm::aead::consts::U12;
use zeroize::Zeroizing;

/// The nonce length: 24 bytes, the first 12 for key derivation, the last 12 for GCM.
pub(crate) const NONCE_LEN: usize = 24;

/// The GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// The master key's state: its encryption round keys and the CMAC subkey `K1`. Both are
/// wiped on drop (`Aes256Enc` by the `zeroize` feature of `aes`, `k1` by `Zeroizing`).
#[derive(Clone)]
pub(crate) struct Xaes {
    aes: Aes256Enc,
    k1: Zeroizing<[u8; 16]>,
}

// Both fields wipe themselves on drop (checked in the tests below).
impl zeroize::ZeroizeOnDrop for Xaes {}

impl Xaes {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let aes = Aes256Enc::new(key.into());
        // K1 = L·x in GF(2^128) (CMAC's subkey), L = AES(K, 0^128).
        let mut l = Zeroizing::new([0u8; 16]);
        aes.encrypt_block((&mut *l).into());
        let mut k1 = Zeroizing::new([0u8; 16]);
        let mut carry = 0;
        for (out, &byte) in k1.iter_mut().zip(l.iter()).rev() {
            *out = (byte << 1) | carry;
            carry = byte >> 7;
        }
        k1[15] ^= carry * 0x87;
        Self { aes, k1 }
    }

    /// Encrypts `buffer` in place and returns the tag; `None` only beyond GCM's length
    /// limits (64 GiB), which no cookie reaches.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buffer: &mut [u8],
    ) -> Option<[u8; TAG_LEN]> {
        self.with_cipher(nonce, |gcm, nonce| {
            let tag = gcm
                .encrypt_inout_detached(nonce.into(), ad, buffer.into())
                .ok()?;
            Some(tag.into())
        })?
    }

    /// Decrypts `buffer` in place if `tag` authenticates it and `ad`. On failure the
    /// buffer holds no plaintext (RustCrypto checks the tag before decrypting).
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        ad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Option<()> {
        self.with_cipher(nonce, |gcm, nonce| {
            gcm.decrypt_inout_detached(nonce.into(), ad, buffer.into(), tag.into())
                .ok()
        })?
    }

    /// Calls `use_gcm` with the AES-GCM instance for `nonce` and the 12 bytes of the nonce
    /// that GCM takes. (Always `Some`: the nonce splits into two halves of 12 bytes.) The
    /// instance is lent, not returned: a move would leave a copy of its round keys in a
    /// stack slot that its zeroizing drop never sees (and cost a copy per cookie).
    fn with_cipher<T>(
        &self,
        nonce: &[u8; NONCE_LEN],
        use_gcm: impl FnOnce(&AesGcm<Aes256Enc, U12>, &[u8; 12]) -> T,
    ) -> Option<T> {
        let (derive, gcm_nonce) = nonce.split_at(12);
        let gcm_nonce: &[u8; 12] = gcm_nonce.try_into().ok()?;
        // Kx = AES(K, [0,1,'X',0] || N[..12] ^ K1) || AES(K, [0,2,'X',0] || N[..12] ^ K1)
        let mut kx = Zeroizing::new([[0u8; 16]; 2]);
        for (counter, block) in (1u8..).zip(kx.iter_mut()) {
            block[..4].copy_from_slice(&[0, counter, b'X', 0]);
            block[4..].copy_from_slice(derive);
            for (b, k) in block.iter_mut().zip(self.k1.iter()) {
                *b ^= k;
            }
        }
        let [first, second] = &mut *kx;
        self.aes.encrypt_block(first.into());
        self.aes.encrypt_block(second.into());
        let mut key = Zeroizing::new([0u8; 32]);
        key[..16].copy_from_slice(first);
        key[16..].copy_from_slice(second);
        let gcm = AesGcm::<Aes256Enc, U12>::new((&*key).into());
        Some(use_gcm(&gcm, gcm_nonce))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The two test vectors of the C2SP specification.
    #[test]
    fn reproduces_the_specification_vectors() {
        let nonce = b"ABCDEFGHIJKLMNOPQRSTUVWX";
        for (key, ad, sealed) in [
            (
                [1u8; 32],
                &b""[..],
                "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271",
            ),
            (
                [3u8; 32],
                &b"c2sp.org/XAES-256-GCM"[..],
                "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d",
            ),
        ] {
            let xaes = Xaes::new(&key);
            let mut buffer = *b"XAES-256-GCM";
            let tag = xaes.seal(nonce, ad, &mut buffer).unwrap();
            let hex: String = buffer
                .iter()
                .chain(&tag)
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(hex, sealed);

            assert_eq!(xaes.open(nonce, ad, &mut buffer, &tag), Some(()));
            assert_eq!(&buffer, b"XAES-256-GCM");

            xaes.seal(nonce, ad, &mut buffer).unwrap();
            let mut forged = tag;
            forged[0] ^= 1;
            assert_eq!(xaes.open(nonce, ad, &mut buffer, &forged), None);
            assert_eq!(xaes.open(nonce, b"other", &mut buffer, &tag), None);
        }
    }

    #[test]
    fn keyed_state_is_zeroized_on_drop() {
        fn wiped<T: zeroize::ZeroizeOnDrop>() {}
        wiped::<Aes256Enc>();
        wiped::<AesGcm<Aes256Enc, U12>>();
        wiped::<Zeroizing<[u8; 16]>>();
    }
}
