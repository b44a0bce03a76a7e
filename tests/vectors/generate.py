#!/usr/bin/env python3
"""Generate known-answer vectors for cookie-session wire formats 1 and 2.

This is a second, independent implementation of FORMAT.md, written from the document and
not from the Rust code, using only the Python `cryptography` package for AES, AES-GCM and
HMAC/HKDF. The Rust tests check that the crate reproduces and accepts (or rejects) every
vector, so the two implementations agree with each other and with FORMAT.md.

Run it from the repository root:
    python3 tests/vectors/generate.py v1 > tests/vectors/v1.json
    python3 tests/vectors/generate.py v2 > tests/vectors/v2.json
Version 1 (45-byte header) is what the crate wrote first and still reads; version 2 adds a
flags byte after the times and is what it writes. The version-2 vectors include compressed
payloads (raw deflate, by Python's own zlib) and values split across several cookies.
"""

import base64
import hashlib
import hmac
import json
import struct
import sys
import zlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FORMATS = {1: {"signed": 0x01, "encrypted": 0x02}, 2: {"signed": 0x03, "encrypted": 0x04}}
FLAGS = {None: 0x00, "browser-session": 0x01, "persistent": 0x03}
FLAG_COMPRESSED = 0x04
CHUNKS_SHIFT = 3
MAX_SIZE = 4096


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hkdf(master: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(master)


def derive(master: bytes):
    return {
        "key_id": hkdf(master, b"cookie-session v1 key id", 4),
        "sign": hkdf(master, b"cookie-session v1 hmac-sha256", 64),
        "encrypt": hkdf(master, b"cookie-session v1 xaes-256-gcm", 32),
    }


def aes_block(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def xaes_256_gcm_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """C2SP XAES-256-GCM: derive a per-nonce AES-256 key with CMAC-KDF, then AES-GCM."""
    assert len(key) == 32 and len(nonce) == 24
    l = int.from_bytes(aes_block(key, bytes(16)), "big")
    k1 = (l << 1) & ((1 << 128) - 1)
    if l >> 127:
        k1 ^= 0x87
    k1 = k1.to_bytes(16, "big")
    m1 = bytes([0, 1, ord("X"), 0]) + nonce[:12]
    m2 = bytes([0, 2, ord("X"), 0]) + nonce[:12]
    xor = lambda a, b: bytes(x ^ y for x, y in zip(a, b))
    derived = aes_block(key, xor(m1, k1)) + aes_block(key, xor(m2, k1))
    return AESGCM(derived).encrypt(nonce[12:], plaintext, aad)


def check_xaes_against_c2sp():
    got = xaes_256_gcm_seal(b"\x01" * 32, b"ABCDEFGHIJKLMNOPQRSTUVWX", b"XAES-256-GCM", b"")
    assert got.hex() == "ce546ef63c9cc60765923609b33a9a1974e96e52daf2fcf7075e2271", got.hex()
    got = xaes_256_gcm_seal(
        b"\x03" * 32, b"ABCDEFGHIJKLMNOPQRSTUVWX", b"XAES-256-GCM", b"c2sp.org/XAES-256-GCM"
    )
    assert got.hex() == "986ec1832593df5443a179437fd083bf3fdb41abd740a21f71eb769d", got.hex()


def header(version, mode, key_id, session_id, iat, idle, absolute, flags=0) -> bytes:
    hdr = bytes([FORMATS[version][mode]]) + key_id + session_id + struct.pack(">QQQ", iat, idle, absolute)
    return hdr if version == 1 else hdr + bytes([flags])


def associated_data(cookie_name: str, hdr: bytes) -> bytes:
    name = cookie_name.encode("ascii")
    return struct.pack(">H", len(name)) + name + hdr


def b64_len(n: int) -> int:
    return n // 3 * 4 + {0: 0, 1: 2, 2: 3}[n % 3]


def chunk_name_len(name: str, position: int) -> int:
    return len(name) if position == 1 else len(name) + 1 + len(str(position))


def split_lengths(name: str, text_len: int, max_cookies: int):
    """FORMAT.md "Chunks": each piece fills its cookie to the 4096-byte name + value limit,
    rounded down to whole base64 quanta, except the last, which takes what is left."""
    if max_cookies == 1 or len(name) + text_len <= MAX_SIZE:
        return [text_len]
    lengths, left, position = [], text_len, 1
    while left > 0:
        room = MAX_SIZE - chunk_name_len(name, position)
        take = left if left <= room else room // 4 * 4
        lengths.append(take)
        left -= take
        position += 1
    assert len(lengths) <= max_cookies
    return lengths


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def encode_pieces(version, mode, master, cookie_name, session_id, iat, idle, absolute, payload,
                  nonce=None, flags=0, compress=False, max_cookies=1):
    """The cookie value(s): one string, or the list of pieces when it is split."""
    keys = derive(master)
    if compress:
        packed = deflate(payload)
        if len(packed) < len(payload):
            payload, flags = packed, flags | FLAG_COMPRESSED
    hdr_len = 45 if version == 1 else 46
    extra = 32 if mode == "signed" else 24 + 16
    lengths = split_lengths(cookie_name, b64_len(hdr_len + len(payload) + extra), max_cookies)
    flags |= (len(lengths) - 1) << CHUNKS_SHIFT
    hdr = header(version, mode, keys["key_id"], session_id, iat, idle, absolute, flags)
    ad = associated_data(cookie_name, hdr)
    if mode == "signed":
        tag = hmac.new(keys["sign"], ad + payload, hashlib.sha256).digest()
        text = b64url(hdr + payload + tag)
    else:
        text = b64url(hdr + nonce + xaes_256_gcm_seal(keys["encrypt"], nonce, payload, ad))
    pieces, at = [], 0
    for n in lengths:
        pieces.append(text[at:at + n])
        at += n
    return pieces


def encode(version, mode, master, cookie_name, session_id, iat, idle, absolute, payload,
           nonce=None, flags=0):
    [value] = encode_pieces(version, mode, master, cookie_name, session_id, iat, idle, absolute,
                            payload, nonce, flags)
    return value


def compact(obj) -> bytes:
    # serde_json's compact form with sorted keys: what encoding a serde_json::Value writes.
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def flip_bit(value: str, byte_index: int) -> str:
    raw = bytearray(unb64url(value))
    raw[byte_index] ^= 0x01
    return b64url(bytes(raw))


def main(version):
    check_xaes_against_c2sp()
    key_a = bytes(range(32))
    key_b = hashlib.sha256(b"cookie-session known-answer key b").digest()
    t0 = 1_767_225_600  # 2026-01-01T00:00:00Z
    idle, life = 1200, 14 * 86_400
    sid_a = bytes.fromhex("00112233445566778899aabbccddeeff")
    sid_b = hashlib.sha256(b"session b").digest()[:16]
    small = {"csrf": "q3Vb9XkL2mWn7Rt5Yp0Zs8Ac4Df6Gh1J", "roles": ["user"], "user_id": 1234567}
    nested = {
        "cart": [{"qty": 2, "sku": "SKU-1", "title": "caf\u00e9 \"blue\" <widget>"}],
        "flash": {"kind": "info", "msg": "Saved.\n"},
        "n": -1.5,
        "ok": True,
        "none": None,
    }
    nonce_1 = bytes(range(24))
    nonce_2 = hashlib.sha256(b"nonce 2").digest()[:24]

    vectors = []

    def ok(name, mode, key, cookie_name, sid, iat, payload, nonce=None, now=None, persistence=None,
           compress=False, max_cookies=1, max_total=None):
        pieces = encode_pieces(version, mode, key, cookie_name, sid, iat, iat + idle, iat + life,
                               compact(payload), nonce, FLAGS[persistence], compress, max_cookies)
        v = {
            "name": name,
            "mode": mode,
            "key": b64url(key),
            "cookie_name": cookie_name,
            "session_id": sid.hex(),
            "issued_at": iat,
            "idle_deadline": iat + idle,
            "absolute_deadline": iat + life,
            "payload": compact(payload).decode(),
            **({"value": pieces[0]} if len(pieces) == 1 else {"values": pieces}),
            "now": iat if now is None else now,
            "expect": "ok",
        }
        if compress:
            v["compressed"] = FLAG_COMPRESSED & unb64url(pieces[0][:64])[45] != 0
        if max_cookies > 1:
            v["max_cookies"] = max_cookies
        if max_total is not None:
            v["max_total"] = max_total
        if nonce is not None:
            v["nonce"] = nonce.hex()
        if persistence is not None:
            v["persistence"] = persistence
        vectors.append(v)
        return v

    def reject(name, base, expect, **changes):
        v = {k: base[k] for k in ("mode", "key", "cookie_name", "value", "values", "now",
                                  "max_cookies", "max_total") if k in base}
        v.update(name=name, expect=expect, **changes)
        vectors.append(v)

    s1 = ok("signed-small", "signed", key_a, "session", sid_a, t0, small)
    ok("signed-nested-host-prefix", "signed", key_b, "__Host-sid", sid_b, t0 + 7, nested)
    e1 = ok("encrypted-small", "encrypted", key_a, "session", sid_a, t0, small, nonce_1)
    ok("encrypted-nested-host-prefix", "encrypted", key_b, "__Host-sid", sid_b, t0 + 7, nested, nonce_2)
    ok("signed-idle-deadline-minus-one", "signed", key_a, "session", sid_a, t0, small, now=t0 + idle - 1)
    if version == 2:
        # A session's own "remember me" choice, in the flags byte.
        ok("signed-persistent", "signed", key_a, "session", sid_a, t0, small, persistence="persistent")
        ok("encrypted-persistent", "encrypted", key_b, "session", sid_b, t0, small, nonce_2,
           persistence="persistent")
        ok("encrypted-browser-session", "encrypted", key_a, "__Host-sid", sid_a, t0, nested, nonce_1,
           persistence="browser-session")

    for base, mode in ((s1, "signed"), (e1, "encrypted")):
        reject(f"{mode}-other-cookie-name", base, "invalid", cookie_name="admin")
        reject(f"{mode}-other-key", base, "unknown-key", key=b64url(key_b))
        reject(f"{mode}-flipped-session-id-bit", base, "invalid", value=flip_bit(base["value"], 5))
        reject(f"{mode}-flipped-last-bit", base, "invalid", value=flip_bit(base["value"], -1))
        reject(f"{mode}-at-idle-deadline", base, "expired-idle", now=t0 + idle)
        reject(f"{mode}-issued-in-future", base, "issued-in-future", now=t0 - 61)
        reject(f"{mode}-padded-base64", base, "malformed", value=base["value"] + "=")
        reject(f"{mode}-standard-alphabet", base, "malformed",
               value=base["value"].replace("-", "+").replace("_", "/")
               if ("-" in base["value"] or "_" in base["value"]) else base["value"] + "+")
    reject("signed-as-encrypted", s1, "wrong-mode", mode="encrypted")
    reject("encrypted-as-signed", e1, "wrong-mode", mode="signed")
    reject("unknown-version", s1, "unsupported-version",
           value=b64url(b"\x7f" + unb64url(s1["value"])[1:]))
    if version == 2:
        # Flags this version does not define are refused, also under a genuine tag.
        keys = derive(key_a)
        def signed_with_flags(flags, payload):
            hdr = header(2, "signed", keys["key_id"], sid_a, t0, t0 + idle, t0 + life, flags)
            ad = associated_data("session", hdr)
            tag = hmac.new(keys["sign"], ad + payload, hashlib.sha256).digest()
            return b64url(hdr + payload + tag)

        for flags in (0x02, 0x40, 0x80):
            reject(f"signed-unknown-flags-{flags:02x}", s1, "malformed",
                   value=signed_with_flags(flags, compact(small)))
        # The compression flag is read only from an authentic header: set over plain JSON
        # (by the key holder), the payload is not deflate.
        reject("signed-compressed-flag-over-json", s1, "corrupt-compression",
               value=signed_with_flags(FLAG_COMPRESSED, compact(small)))
        # A deflate stream that inflates past the maximum session size (64 KiB by default).
        reject("signed-compressed-inflates-too-far", s1, "session-too-large",
               value=signed_with_flags(FLAG_COMPRESSED, deflate(b'{"a":"' + b"a" * 70_000 + b'"}')))

        # Compression: raw deflate of the JSON, flagged in the header.
        cart = {"cart": [{"qty": i % 4 + 1, "sku": f"SKU-{100000 + 37 * i}",
                          "title": f"Item {i} blue widget"} for i in range(60)],
                "csrf": small["csrf"], "user_id": small["user_id"]}
        sc = ok("signed-compressed", "signed", key_a, "session", sid_a, t0, cart, compress=True)
        ok("encrypted-compressed", "encrypted", key_b, "session", sid_b, t0, cart, nonce_2,
           compress=True)
        raw = bytearray(unb64url(sc["value"]))
        raw[45] &= ~FLAG_COMPRESSED
        reject("signed-compressed-flag-cleared", sc, "invalid", value=b64url(bytes(raw)))

        # Chunks: one value split across `session`, `session.2`, ...; count in the header.
        blob = {"notes": [hashlib.sha256(bytes([i])).hexdigest() for i in range(150)],
                "user_id": small["user_id"]}
        big = ok("signed-chunked", "signed", key_a, "session", sid_a, t0, blob, max_cookies=4,
                 max_total=20_000)
        ok("encrypted-chunked", "encrypted", key_b, "__Host-sid", sid_b, t0, blob, nonce_1,
           max_cookies=4, max_total=20_000)
        ok("signed-chunked-and-compressed", "signed", key_b, "session", sid_b, t0,
           {"notes": blob["notes"] * 2}, compress=True, max_cookies=4, max_total=20_000)
        pieces = big["values"]
        assert len(pieces) == 4 and len(pieces[1]) == len(pieces[2])
        reject("chunked-missing-last", big, "missing-chunk", values=pieces[:3])
        reject("chunked-missing-all-but-first", big, "missing-chunk", values=pieces[:1])
        reject("chunked-reordered", big, "invalid", values=[pieces[0], pieces[2], pieces[1], pieces[3]])
        reject("chunked-duplicated", big, "invalid", values=[pieces[0], pieces[1], pieces[1], pieces[3]])
        other = encode_pieces(2, "signed", key_a, "session", sid_b, t0, t0 + idle, t0 + life,
                              compact({"notes": blob["notes"][::-1], "user_id": small["user_id"]}),
                              max_cookies=4)
        assert [len(p) for p in other] == [len(p) for p in pieces]
        reject("chunked-spliced-from-another-session", big, "invalid",
               values=[pieces[0], other[1], pieces[2], pieces[3]])
        reject("chunked-too-many-for-config", big, "too-many-chunks", max_cookies=3)
        reject("chunked-over-total", big, "too-large", max_total=12_000)
        raw = bytearray(unb64url(pieces[0]))
        raw[45] = (raw[45] & ~0x38) | (2 << CHUNKS_SHIFT)
        reject("chunked-count-lowered", big, "invalid",
               values=[b64url(bytes(raw))] + pieces[1:])
        # A version-1 body relabelled as version 2: the flags byte is the JSON's "{".
        reject("version-1-body-as-version-2", s1, "malformed",
               value=b64url(b"\x03" + unb64url(encode(1, "signed", key_a, "session", sid_a, t0,
                                                    t0 + idle, t0 + life, compact(small)))[1:]))

    # At the absolute deadline: a cookie re-issued late in the session so that idle < absolute
    # is not what triggers first.
    late = t0 + life - 600
    v = encode(version, "signed", key_a, "session", sid_a, late, t0 + life, t0 + life, compact(small))
    vectors.append({
        "name": "signed-at-absolute-deadline", "mode": "signed", "key": b64url(key_a),
        "cookie_name": "session", "value": v, "now": t0 + life, "expect": "expired-absolute",
    })

    json.dump({
        "format": f"cookie-session wire format {version} (FORMAT.md)",
        "generated_by": "tests/vectors/generate.py, an independent Python implementation using the cryptography package",
        "vectors": vectors,
    }, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    arg = sys.argv[1] if len(sys.argv) > 1 else "v1"
    if arg not in ("v1", "v2"):
        sys.exit("usage: generate.py v1|v2")
    main(int(arg[1]))
