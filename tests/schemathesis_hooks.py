"""schemathesis hooks for infra/local-smoke.sh.

A fresh, valid token for every generated request. Without it, fuzzing stops at
the door: a generated DELETE /session or DELETE /account revokes a shared token,
and every later request on an authenticated route answers 401 before its body
is read. With it, every authenticated route gets as far as parsing the body.
It also keeps a tally of the answers per operation, written as JSON to
$WXAUTH_SCHEMATHESIS_REPORT when the run ends.
"""
import atexit
import collections
import itertools
import json
import os
import urllib.request

import schemathesis

BASE = os.environ["WXAUTH_SCHEMATHESIS_BASE"]
REPORT = os.environ.get("WXAUTH_SCHEMATHESIS_REPORT")
_codes = itertools.count()
_answers = collections.defaultdict(collections.Counter)


@schemathesis.auth(refresh_interval=None)
class FreshLogin:
    """A login per request, each as a user of its own (the simulator keys the
    openid on the code's prefix), so that no login revokes another's session."""

    def get(self, case, ctx):
        body = json.dumps({"code": f"schemathesis{next(_codes)}-1"}).encode()
        request = urllib.request.Request(
            BASE + "/login", data=body, method="POST",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)["token"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def after_call(ctx, case, response):
    status = response.status_code
    error = ""
    if status >= 400:
        try:
            error = " " + json.loads(response.content or b"{}").get("error", "")
        except ValueError:
            error = " (not JSON)"
    _answers[f"{case.method.upper()} {case.path}"][f"{status}{error}"] += 1


@atexit.register
def _write_report():
    if REPORT:
        with open(REPORT, "w") as out:
            json.dump({op: dict(counts) for op, counts in sorted(_answers.items())}, out, indent=1)
