#!/usr/bin/env python3
"""Drive headless Chromium (through ChromeDriver's W3C WebDriver API) against the demo.

    browser_test.py DEMO_URL [cookie|chunked|server-side|no-cookies]

Proves, in the browser's real cookie store, that the session cookie is stored and sent back
with the configured attributes, that a read-only page does not rewrite it, that logout
removes it, and that a session at the largest size this crate accepts is stored while a
cookie one byte over the browser's limit is dropped. In server-side mode (the demo with
SESSION_STORE=sqlite:...) the size checks give way to what only server-side sessions do: a
session far larger than a cookie, and a logout after which the replayed old cookie finds
nothing. In chunked mode (the demo with SESSION_COOKIES=4) a 10 KB session is stored across
four cookies and sent back whole, and when it shrinks the stale pieces leave the browser's
cookie store. In no-cookies mode Chromium blocks all cookies, and the demo's /plain page
carries the session in its links and form (the `tg_visit` parameter) instead.
Standard library only.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

NAME = "demo-session"
BROWSER_LIMIT = 4096  # name + value, Chromium's kMaxCookieNamePlusValueSize


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, block_cookies=False):
        self.port = free_port()
        self.driver = subprocess.Popen(
            [shutil.which("chromedriver"), f"--port={self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                self.request("GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync",
                f"--user-data-dir={self.profile}"]
        options = {"args": args}
        if block_cookies:
            options["prefs"] = {"profile.default_content_setting_values.cookies": 2}
        binary = shutil.which("chromium")
        if binary:
            options["binary"] = binary
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.session = self.request("POST", "/session", caps)["sessionId"]

    def request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"{}").get("value")

    def cmd(self, method, path, body=None):
        return self.request(method, f"/session/{self.session}{path}", body)

    def go(self, url):
        self.cmd("POST", "/url", {"url": url})

    def cookies(self):
        return {c["name"]: c for c in self.cmd("GET", "/cookie")}

    def script(self, source, *args):
        return self.cmd("POST", "/execute/sync", {"script": source, "args": list(args)})

    def submit(self, base, form_action, field=None, value=None, **more):
        """POSTs a form from /health (a page that never touches the session, so nothing
        but the form changes it), like the demo's own forms; returns the result page."""
        self.go(base + "health")
        fields = ({field: value} if field else {}) | more
        self.script(
            "const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];"
            "for (const [name, value] of Object.entries(arguments[1])) {"
            "  const i = document.createElement('input'); i.name = name; i.value = value;"
            "  f.appendChild(i); }"
            "document.body.appendChild(f); f.submit();", form_action, fields)
        for _ in range(50):
            if self.script("return location.pathname") == form_action:
                break
            time.sleep(0.1)
        return self.text()

    def text(self):
        return self.script("return document.body ? document.body.innerText : '';")

    def quit(self):
        try:
            self.cmd("DELETE", "")
        finally:
            self.driver.terminate()
            shutil.rmtree(self.profile, ignore_errors=True)


def main(url, mode="cookie"):
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail if not ok else ''}")

    if mode == "no-cookies":
        wd = WebDriver(block_cookies=True)
        try:
            no_cookie_checks(wd, url, check)
        finally:
            wd.quit()
        passed, failed = results.count(True), results.count(False)
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0

    wd = WebDriver()
    try:
        wd.go(url)
        cookie = wd.cookies().get(NAME)
        check("the first visit stores the session cookie", cookie is not None, wd.cookies())
        if cookie is None:
            return 1
        check("HttpOnly", cookie.get("httpOnly") is True, cookie)
        check("SameSite=Lax", cookie.get("sameSite") == "Lax", cookie)
        check("Path=/", cookie.get("path") == "/", cookie)
        check("no Secure (plain-HTTP development mode)", cookie.get("secure") is False, cookie)
        check("a browser-session cookie until 'remember me'", "expiry" not in cookie, cookie)

        wd.go(url)
        check("the cookie is sent back (the counter continues)", "Visits in this session: 2" in wd.text(), wd.text())

        before = wd.cookies()[NAME]["value"]
        wd.go(url + "me")
        check("a read-only page does not rewrite the cookie", wd.cookies()[NAME]["value"] == before)
        check("the read-only page sees the session", '"count":2' in wd.text(), wd.text())

        before = wd.cookies()[NAME]["value"]
        text = wd.submit(url, "/login", "user", "ada", remember="1")
        after = wd.cookies().get(NAME, {})
        check("login replaces the cookie (regenerated session)",
              after.get("value") not in (None, before), text)
        # A cookie session's cookie expires with its idle deadline; a server-side one's with
        # the 14-day lifetime (idleness is the record's expiry, renewed without a cookie).
        low, high = (1209500, 1209601) if mode == "server-side" else (1100, 1201)
        remaining = after.get("expiry", 0) - time.time()
        check("'remember me': persistent, expiring with the session's deadline",
              low < remaining <= high, remaining)
        wd.go(url)
        check("a flash message greets the user once", "Welcome, ada." in wd.text(), wd.text())
        remaining = wd.cookies()[NAME].get("expiry", 0) - time.time()
        check("a later re-issue stays persistent", low < remaining <= high, remaining)
        wd.go(url)
        check("the flash message is gone on the next page", "Welcome" not in wd.text(), wd.text())
        wd.go(url + "me")
        check("the session knows the user", '"user":"ada"' in wd.text(), wd.text())

        if mode in ("server-side", "chunked"):
            (server_side_checks if mode == "server-side" else chunked_checks)(wd, url, check)
            passed, failed = results.count(True), results.count(False)
            print(f"{passed} passed, {failed} failed")
            return 1 if failed else 0

        # The largest note whose session this crate still accepts, by bisection over the form.
        lo, hi = 1000, 4096  # lo is accepted, hi is refused (500)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            text = wd.submit(url, "/note", "text", "x" * mid)
            if "Saved a note" in text:
                lo = mid
            else:
                hi = mid
        wd.submit(url, "/note", "text", "x" * lo)
        stored = wd.cookies().get(NAME)
        size = len(NAME) + len(stored["value"]) if stored else 0
        check("a session at the largest accepted size is stored by the browser",
              stored is not None and BROWSER_LIMIT - 4 <= size <= BROWSER_LIMIT, size)
        wd.go(url + "me")
        check("and it is sent back whole", f'"note":"{"x" * lo}"' in wd.text())

        # One byte over the limit is what the browser drops, which is why the crate refuses it.
        wd.go(url + "health")
        wd.script("document.cookie = 'edge=' + 'a'.repeat(arguments[0] - 4)", BROWSER_LIMIT)
        wd.script("document.cookie = 'over=' + 'a'.repeat(arguments[0] - 4 + 1)", BROWSER_LIMIT)
        jar = wd.cookies()
        check("the browser stores name+value of exactly 4096 bytes", "edge" in jar)
        check("the browser silently drops 4097 bytes", "over" not in jar)
        wd.script("document.cookie = 'edge=; Max-Age=0'")

        wd.submit(url, "/logout")
        check("logout removes the cookie", NAME not in wd.cookies(), wd.cookies().keys())
    finally:
        wd.quit()
    passed, failed = results.count(True), results.count(False)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def no_cookie_checks(wd, url, check):
    """A browser that keeps no cookies at all: the session travels in `tg_visit`."""
    wd.go(url)
    check("cookies are blocked: the home page's cookie is not kept", wd.cookies() == {}, wd.cookies())

    def count():
        return wd.script("const e = document.getElementById('count'); return e ? e.innerText : '';")

    wd.go(url + "plain")
    check("the cookie-less page starts a session", count() == "Visits through these links: 1", count())
    for expected in (2, 3):
        wd.script("document.getElementById('next').click();")
        for _ in range(50):
            if count().endswith(f": {expected}"):
                break
            time.sleep(0.1)
        check(f"following the link carries the session (visit {expected})",
              count() == f"Visits through these links: {expected}", count())
    check("the page that came from a token link sends no Referer onwards",
          wd.script("return document.referrer") == "", wd.script("return document.referrer"))
    check("the link carries the session in the URL", "tg_visit=" in wd.script("return location.search"))

    wd.script("document.querySelector('input[name=text]').value = 'hello';"
              "document.getElementById('save').click();")
    for _ in range(50):
        if "hello" in wd.text():
            break
        time.sleep(0.1)
    check("a form with the hidden field stores a note in the same session",
          "Note: hello" in wd.text() and count() == "Visits through these links: 3", wd.text())
    wd.script("document.getElementById('next').click();")
    for _ in range(50):
        if count().endswith(": 4"):
            break
        time.sleep(0.1)
    check("the note and the count survive the next link",
          "Note: hello" in wd.text() and count() == "Visits through these links: 4", wd.text())
    check("the browser still holds no cookie", wd.cookies() == {}, wd.cookies())


def chunked_checks(wd, url, check):
    """A session larger than a cookie, split across several: stored, sent back whole, and
    the pieces it no longer needs removed from the browser."""
    pieces = [NAME] + [f"{NAME}.{i}" for i in range(2, 5)]
    note = "n" * 10_000
    text = wd.submit(url, "/note", "text", note)
    check("a 10 KB note is saved in a chunked cookie session", "Saved a note of 10000 bytes" in text, text)
    jar = wd.cookies()
    present = [n for n in pieces if n in jar]
    check("the browser stores all four pieces", present == pieces, sorted(jar))
    sizes = [len(n) + len(jar[n]["value"]) for n in present]
    check("each piece is within the browser's 4096-byte limit",
          all(s <= BROWSER_LIMIT for s in sizes), sizes)
    check("the pieces carry the session's attributes",
          all(jar[n].get("httpOnly") is True and jar[n].get("path") == "/" for n in present))
    expiries = [jar[n].get("expiry") for n in present]
    check("and expire with it ('remember me' was ticked at login)",
          None not in expiries and max(expiries) - min(expiries) <= 2, expiries)
    wd.go(url + "me")
    check("the whole note comes back from the pieces", note in wd.text())
    before = {n: jar[n]["value"] for n in present}
    wd.go(url + "me")
    check("a read-only page rewrites no piece",
          {n: c["value"] for n, c in wd.cookies().items() if n in pieces} == before)

    wd.submit(url, "/note", "text", "short")
    jar = wd.cookies()
    check("after the session shrinks the stale pieces are gone",
          [n for n in pieces if n in jar] == [NAME], sorted(jar))
    wd.go(url + "me")
    check("and the session reads from the one cookie", '"note":"short"' in wd.text(), wd.text())

    wd.submit(url, "/note", "text", note)
    wd.submit(url, "/logout")
    jar = wd.cookies()
    check("logout removes every piece", not any(n in jar for n in pieces), sorted(jar))


def server_side_checks(wd, url, check):
    """The session lives on the server: the cookie stays small, the data need not."""
    before = wd.cookies()[NAME]["value"]
    note = "n" * 10_000
    text = wd.submit(url, "/note", "text", note)
    check("a 10 KB note is saved (it could never fit a cookie)", "Saved a note of 10000 bytes" in text, text)
    cookie = wd.cookies()[NAME]
    check("the cookie is unchanged by the write: only its id travels", cookie["value"] == before)
    check("and it stays small", len(NAME) + len(cookie["value"]) < 200, len(cookie["value"]))
    wd.go(url + "me")
    check("the whole note comes back from the server", note in wd.text())
    wd.submit(url, "/logout")
    check("logout removes the cookie", NAME not in wd.cookies(), wd.cookies().keys())
    # A copy of the old cookie, replayed after logout (as a thief would): no session.
    wd.go(url + "health")
    wd.cmd("POST", "/cookie", {"cookie": {"name": NAME, "value": cookie["value"], "path": "/",
                                          "httpOnly": True}})
    wd.go(url + "me")
    check("the replayed pre-logout cookie finds no session", '"user":null' in wd.text(), wd.text())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else os.environ["DEMO_URL"],
                  sys.argv[2] if len(sys.argv) > 2 else "cookie"))
