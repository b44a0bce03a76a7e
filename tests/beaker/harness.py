#!/usr/bin/env python3
"""Drive the real Beaker 1.14.1 CookieSession, as TurboGears 2 configures it.

    harness.py vectors > tests/vectors/beaker.json   # cookies made by real Beaker
    harness.py check FILE                            # real Beaker decodes our cookies
    harness.py stored-vectors > tests/vectors/beaker-stored.json
                                                     # server-side session values
    harness.py check-stored FILE                     # real Beaker decodes our values

It never reimplements Beaker's crypto: every cookie here is made or read by Beaker itself.
Needs beaker==1.14.1, cryptography (GCM backend) and pycryptodome (CTR backend); .ci/run
installs pinned versions into a virtualenv.
"""

import base64
import datetime
import json
import random
import sys
import time
from unittest import mock

import beaker
from beaker.session import CookieSession, Session

assert beaker.__version__ == "1.14.1", beaker.__version__

NAME = "myproject"
VALIDATE_KEY = "8f0c6a52-5b1e-4f43-9a7e-2d3c4b5a6f70"  # a TG quickstart-style uuid4
ENCRYPT_KEY = "my-encrypt-key"
BACKENDS = {"gcm": "cryptography", "ctr": "pycryptodome"}


def options(encrypt=None, timeout=None, validate_key=VALIDATE_KEY):
    """TurboGears' quickstart settings (data_serializer=json, invalidate_corrupt)."""
    opts = dict(key=NAME, validate_key=validate_key, data_serializer="json", timeout=timeout)
    if encrypt:
        opts.update(encrypt_key=ENCRYPT_KEY, crypto_type=BACKENDS[encrypt])
    return opts


def make(data, at, encrypt=None, timeout=None):
    """A new session holding `data`, saved at time `at`; returns the cookie value."""
    request = {"cookie": ""}
    with mock.patch("time.time", return_value=at):
        session = CookieSession(request, **options(encrypt, timeout))
        session.update(data)
        session.save()
    out = request["cookie_out"].strip()
    return out.split(";")[0].split("=", 1)[1], dict(session)


def read(value, at, encrypt=None, timeout=None, validate_key=VALIDATE_KEY):
    """What real Beaker loads from `value` at time `at` (exceptions propagate)."""
    request = {"cookie": f"{NAME}={value}"}
    with mock.patch("time.time", return_value=at):
        session = CookieSession(request, invalidate_corrupt=False, **options(encrypt, timeout, validate_key))
    return dict(session)


def user_keys(session):
    return {k: v for k, v in session.items() if not k.startswith("_")}


def vectors():
    rng = random.Random(7)
    t0 = 1767225600.25
    cases = [
        ("signed-simple", {"user": "alice", "tg_lang": "en"}, None),
        ("signed-unicode-nested", {"name": "Zoë 🍪 \"q\"", "cart": [{"sku": "A-1", "qty": 2}], "n": 1.5, "ok": True, "none": None}, None),
        ("signed-empty", {}, None),
        ("gcm-simple", {"user": "bob"}, "gcm"),
        ("gcm-unicode-nested", {"name": "Zoë 🍪", "cart": [[1, 2], {"x": -3}]}, "gcm"),
        ("ctr-simple", {"user": "carol"}, "ctr"),
        ("ctr-unicode-nested", {"name": "Zoë 🍪", "deep": {"a": {"b": {"c": [1, 2, 3]}}}}, "ctr"),
    ]
    # Near Beaker's limit: random text compresses poorly, so grow it until the signed part
    # (everything after the 40-char signature) is just under 4064 characters.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    blob = ""
    while True:
        longer = blob + "".join(rng.choice(alphabet) for _ in range(40))
        value, _ = make({"blob": longer}, t0)
        if len(value) - 40 > 4000:
            break
        blob = longer
    cases.append(("signed-near-limit", {"blob": blob}, None))

    out = []
    for name, data, encrypt in cases:
        value, session = make(data, t0, encrypt)
        out.append({
            "name": name, "cipher": encrypt, "value": value, "now": t0 + 30, "timeout": None,
            "expect": "ok", "data": user_keys(session),
            "internal": {k: v for k, v in session.items() if k.startswith("_")},
        })
        # Sanity: real Beaker reads back what it wrote.
        assert user_keys(read(value, t0 + 30, encrypt)) == user_keys(session)

    simple = out[0]
    gcm = out[3]
    tampered = simple["value"][:50] + ("A" if simple["value"][50] != "A" else "B") + simple["value"][51:]
    out.append({"name": "signed-tampered", "cipher": None, "value": tampered, "now": t0, "timeout": None, "expect": "invalid"})
    wrong = gcm["value"][:-8] + ("AAAAAAA=" if not gcm["value"].endswith("AAAAAAA=") else "BBBBBBB=")
    out.append({"name": "gcm-tampered-ciphertext", "cipher": "gcm", "value": wrong, "now": t0, "timeout": None, "expect": "invalid"})
    # Timeout: Beaker's rule is `now - _accessed_time > timeout` (strict).
    for cipher, base in ((None, simple), ("gcm", gcm)):
        at = base["internal"]["_accessed_time"]
        label = cipher or "signed"
        out.append({**base, "name": f"{label}-at-timeout", "now": at + 600, "timeout": 600, "expect": "ok"})
        out.append({**base, "name": f"{label}-past-timeout", "now": at + 600.5, "timeout": 600, "expect": "expired"})
        # Confirm both with real Beaker.
        assert user_keys(read(base["value"], at + 600, cipher, 600)) == base["data"]
        assert user_keys(read(base["value"], at + 600.5, cipher, 600)) == {}
    json.dump({
        "generated_by": f"tests/beaker/harness.py with beaker {beaker.__version__}",
        "cookie_name": NAME, "validate_key": VALIDATE_KEY, "encrypt_key": ENCRYPT_KEY,
        "vectors": out,
    }, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


def check(path):
    """Each entry: {value, cipher, data, now}. Real Beaker must load exactly `data`."""
    def loads(e):
        got = user_keys(read(e["value"], e.get("now", time.time()), e.get("cipher")))
        return got == e["data"], got

    return report(path, loads)


def report(path, loads):
    """Runs `loads(entry) -> (ok, what Beaker got)` on each entry of the JSON file at
    `path`, prints a line each, and returns the exit status: 1 on any failure."""
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    passed = failed = 0
    for e in entries:
        try:
            ok, got = loads(e)
            detail = "" if ok else f"got {got!r}"
        except Exception as exc:  # report every failure, then fail
            ok, detail = False, repr(exc)
        passed += ok
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {e.get('name', '?')} {detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


def server_session(serializer, encrypt=None, at=None):
    """A server-side Beaker Session (memory namespace) configured as a backend's would be."""
    opts = dict(type="memory", data_serializer=serializer)
    if encrypt:
        opts.update(encrypt_key=ENCRYPT_KEY, validate_key=VALIDATE_KEY, crypto_type=BACKENDS[encrypt])
    with mock.patch("time.time", return_value=at if at is not None else time.time()):
        return Session({}, **opts)


def text(value):
    """Beaker's value is text (its base64 helpers return str); bytes, should it change."""
    return value.decode("ascii") if isinstance(value, bytes) else value


def stored(value):
    """The value as Beaker's _decrypt_data takes it (what the backends hand back): text."""
    return value


def stored_vectors():
    """What Session.save puts under the namespace key 'session', made by Beaker itself."""
    t0 = 1767225600.25
    data = {"user": "alice", "name": "Zo\u00eb \U0001F36A", "cart": [{"sku": "A-1", "qty": 2}], "n": 1.5, "ok": True, "none": None}
    out = []
    for serializer in ("pickle", "json"):
        for encrypt in (None, "gcm", "ctr"):
            session = server_session(serializer, encrypt, t0)
            session.update(data)
            value = text(session._encrypt_data(dict(session)))
            assert session._decrypt_data(stored(value)) == dict(session)
            out.append({
                "name": f"{serializer}-{encrypt or 'plain'}", "serializer": serializer, "cipher": encrypt,
                "id": session.id, "value": value, "expect": "ok", "data": user_keys(session),
                "internal": {k: v for k, v in session.items() if k.startswith("_")},
            })
    # A Python object in the session: the pickle names a class, and is refused here.
    session = server_session("pickle", None, t0)
    session["when"] = datetime.datetime(2026, 1, 1)
    out.append({"name": "pickle-datetime", "serializer": "pickle", "cipher": None, "id": session.id,
                "value": text(session._encrypt_data(dict(session))), "expect": "refused"})
    gcm = out[1]
    tampered = gcm["value"][:-8] + ("AAAAAAA=" if not gcm["value"].endswith("AAAAAAA=") else "BBBBBBB=")
    out.append({**gcm, "name": "pickle-gcm-tampered", "value": tampered, "expect": "invalid"})
    json.dump({
        "generated_by": f"tests/beaker/harness.py with beaker {beaker.__version__}",
        "validate_key": VALIDATE_KEY, "encrypt_key": ENCRYPT_KEY, "vectors": out,
    }, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


def check_stored(path):
    """Each entry: {name, serializer, cipher, value, data}. Beaker must read exactly `data`,
    with its own internal keys and no `_id`."""
    def loads(e):
        got = server_session(e["serializer"], e.get("cipher"))._decrypt_data(stored(e["value"]))
        internal = sorted(k for k in got if k.startswith("_"))
        return user_keys(got) == e["data"] and internal == ["_accessed_time", "_creation_time", "_domain", "_path"], got

    return report(path, loads)


if __name__ == "__main__":
    if sys.argv[1:2] == ["vectors"]:
        vectors()
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 3:
        sys.exit(check(sys.argv[2]))
    elif sys.argv[1:2] == ["stored-vectors"]:
        stored_vectors()
    elif sys.argv[1:2] == ["check-stored"] and len(sys.argv) == 3:
        sys.exit(check_stored(sys.argv[2]))
    else:
        sys.exit(__doc__)
