"""The Python side of tests/turbogears_visits.rs: a TurboGears 1 application's visits with
the "visit based sessions" recipe of the TurboGears documents, on PostgreSQL through
psycopg2, one request at a time. Times are UTC.

    visit.py CONFIG COMMAND [KEY] [ARGUMENT]

CONFIG is JSON: `dsn`, `visit` and `identity` (table names), `timeout` (seconds).

- `new DATA`: a new visit (key: SHA-1 hex of random bytes, as TurboGears makes them) with
  the session DATA (a JSON object; an empty one stores NULL).
- `read KEY`: the visit's session, user and whether it is live; a live visit's expiry is
  then moved on, as the Visit framework does on every request.
- `write KEY CHANGES`: load, apply CHANGES (null deletes a key), save: the recipe's save
  writes the pickle and raises the expiry, never lowers it.
- `login KEY USER`, `logout KEY`: TurboGears identity (`visit_identity`); logout also
  clears the session (the recipe's delete).
- `age KEY SECONDS`: the visit expired SECONDS ago.
- `datetime KEY`: store a `datetime` in the session (no JSON form).

Output is one JSON object.
"""

import datetime
import hashlib
import json
import os
import pickle
import sys

import psycopg2


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def main():
    config = json.loads(sys.argv[1])
    command = sys.argv[2]
    key = sys.argv[3] if len(sys.argv) > 3 else None
    argument = sys.argv[4] if len(sys.argv) > 4 else None
    visit, identity = config["visit"], config["identity"]
    timeout = datetime.timedelta(seconds=config["timeout"])
    db = psycopg2.connect(config["dsn"])
    cur = db.cursor()

    def load(key):
        cur.execute("SELECT session_data, expiry FROM %s WHERE visit_key = %%s" % visit, (key,))
        row = cur.fetchone()
        if row is None or row[1] is None or row[1] < now():
            return None
        return pickle.loads(bytes(row[0])) if row[0] is not None else {}

    def save(key, data):
        pickled = pickle.dumps(data, pickle.HIGHEST_PROTOCOL) if data else None
        cur.execute(
            "UPDATE %s SET session_data = %%s, expiry = GREATEST(expiry, %%s) WHERE visit_key = %%s" % visit,
            (pickled, now() + timeout, key),
        )

    def user(key):
        cur.execute("SELECT user_id FROM %s WHERE visit_key = %%s" % identity, (key,))
        row = cur.fetchone()
        return row[0] if row else None

    out = {}
    if command == "new":
        key = hashlib.sha1(os.urandom(32)).hexdigest()
        cur.execute(
            "INSERT INTO %s (visit_key, created, expiry) VALUES (%%s, %%s, %%s)" % visit,
            (key, now(), now() + timeout),
        )
        save(key, json.loads(argument))
    elif command == "read":
        data = load(key)
        out["live"] = data is not None
        out["data"] = {k: str(v) if isinstance(v, datetime.datetime) else v
                       for k, v in (data or {}).items()}
        out["user"] = user(key)
        if data is not None:
            cur.execute(
                "UPDATE %s SET expiry = %%s WHERE visit_key = %%s AND expiry < %%s" % visit,
                (now() + timeout, key, now() + timeout),
            )
    elif command == "write":
        data = load(key)
        assert data is not None, "the visit is not live"
        for k, v in json.loads(argument).items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        save(key, data)
    elif command == "datetime":
        data = load(key)
        data["when"] = datetime.datetime(2026, 12, 6, 12, 0)
        save(key, data)
    elif command == "login":
        cur.execute(
            "INSERT INTO %s (visit_key, user_id) VALUES (%%s, %%s) "
            "ON CONFLICT (visit_key) DO UPDATE SET user_id = EXCLUDED.user_id" % identity,
            (key, int(argument)),
        )
    elif command == "logout":
        cur.execute("DELETE FROM %s WHERE visit_key = %%s" % identity, (key,))
        cur.execute("UPDATE %s SET session_data = NULL WHERE visit_key = %%s" % visit, (key,))
    elif command == "age":
        cur.execute(
            "UPDATE %s SET expiry = %%s WHERE visit_key = %%s" % visit,
            (now() - datetime.timedelta(seconds=float(argument)), key),
        )
    else:
        raise SystemExit("unknown command %r" % command)
    db.commit()
    out["key"] = key
    print(json.dumps(out))


if __name__ == "__main__":
    main()
