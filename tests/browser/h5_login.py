"""The H5 example (examples/h5) in a real browser: Debian's Chromium driven by
Playwright for Python, against the local server, which serves the page and
runs the WeChat simulator whose authorize page stands in for
open.weixin.qq.com's.

  python3 tests/browser/h5_login.py <local server base URL> <screenshot folder>

Signs in through the OAuth redirect (the page makes a state, WeChat's page
sends the user back with a code and the state, the page posts the code with
its appid), checks what the page shows against the API, that the code left
the address bar, that a reload keeps the session, and that a code arriving
with a state the page did not make is refused. Screenshots of the signed-out
and signed-in page go to the folder.
"""
import json
import os
import sys
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("WXAUTH_CHROMIUM", "/usr/bin/chromium")
# No background traffic: the machine's network is closed, and a browser that
# tries to reach Google's services at start-up only slows down.
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def api(base, path, token):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def main():
    base, shots = sys.argv[1], Path(sys.argv[2])
    shots.mkdir(parents=True, exist_ok=True)
    results = []

    def check(name, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + str(detail)}")
        results.append(bool(ok))

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 720})
        page.goto(f"{base}/examples/h5/")
        page.wait_for_selector("#sign-in:visible")
        check("signed out at first", page.inner_text("#status") == "Not signed in.", page.inner_text("#status"))
        page.screenshot(path=str(shots / "h5-signed-out.png"))

        page.click("#sign-in")
        page.wait_for_selector("#who:visible")
        check("no code left in the address bar", "code=" not in page.url and "state=" not in page.url, page.url)
        token = page.evaluate("sessionStorage.getItem('wxauth_h5_token')")
        session = api(base, "/session", token)
        account = api(base, "/account", token)
        check("the page shows the account", page.inner_text("#user-id") == account["userId"], page.inner_text("#user-id"))
        check("the session is the official account's", page.inner_text("#appid") == session["appid"] == "wx0000000000000002", session)
        check("the apps it lists are the account's",
              page.inner_text("#apps") == ", ".join(app["appid"] for app in account["apps"]), page.inner_text("#apps"))
        page.screenshot(path=str(shots / "h5-signed-in.png"))

        page.reload()
        page.wait_for_selector("#who:visible")
        check("a reload keeps the session", page.inner_text("#user-id") == account["userId"])

        # A code with a state this page never made: refused, nothing signed in.
        fresh = browser.new_page()
        fresh.goto(f"{base}/examples/h5/?code=forged&state=not-ours")
        fresh.wait_for_selector("#error:visible")
        check("a forged state is refused", "state mismatch" in fresh.inner_text("#error"), fresh.inner_text("#error"))
        check("and signs nobody in", fresh.is_visible("#sign-in") and not fresh.is_visible("#who"))
        browser.close()

    failed = results.count(False)
    print(f"h5 example in Chromium: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
