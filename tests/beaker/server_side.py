"""The Python side of tests/beaker_server_side.rs: Beaker 1.14's own `Session` on one of
its server-side backends, driven one request at a time.

    server_side.py CONFIG COMMAND [COOKIE] [CHANGES]

CONFIG is JSON: the Beaker settings (`type`, `url` or `data_dir`, `timeout`, `secret`,
`data_serializer`, `encrypt_key`, `validate_key`, `crypto_type`) and `key` (the cookie
name). COMMAND is one request:

- `write`: load the session of COOKIE (or a new one), apply CHANGES (a JSON object; a
  null value deletes the key), save; print the cookie value and the data.
- `read`: load the session of COOKIE and print whether it was new, and its data; then, as
  Beaker's middleware does after every request that used the session, save its access time.
- `delete`: load the session of COOKIE and delete it (Beaker's logout: the middleware then
  saves the emptied session).
- `age`: move the session's `_accessed_time` SECONDS into the past (CHANGES is the number),
  as if it had not been used since.
- `datetime`: store a `datetime` under `when` (a value with no JSON form; pickle only).

Output is one JSON object: {"cookie": ..., "new": ..., "data": {user keys}}.
"""

import datetime
import json
import sys

from beaker.session import Session


def session(config, cookie):
    options = {k: v for k, v in config.items() if v is not None}
    header = "%s=%s" % (options["key"], cookie) if cookie else ""
    return Session({"cookie": header}, **options)


def user_keys(s):
    return {k: str(v) if isinstance(v, datetime.datetime) else v
            for k, v in s.items() if not k.startswith("_")}


def main():
    config = json.loads(sys.argv[1])
    command = sys.argv[2]
    cookie = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    s = session(config, cookie)
    if command == "write":
        for key, value in json.loads(sys.argv[4]).items():
            if value is None:
                s.pop(key, None)
            else:
                s[key] = value
        s.save()
    elif command == "delete":
        s.delete()
        s.save()
    elif command == "age":
        s["_accessed_time"] = s["_accessed_time"] - float(sys.argv[4])
        s.save()
    elif command == "datetime":
        s["when"] = datetime.datetime(2026, 12, 6, 12, 0)
        s.save()
    elif command == "read":
        s.save(accessed_only=True)
    else:
        raise SystemExit("unknown command %r" % command)
    value = s.cookie[s.key].coded_value if s.key in s.cookie else None
    print(json.dumps({"cookie": value, "new": s.is_new, "data": user_keys(s)}))


if __name__ == "__main__":
    main()
