#!/usr/bin/env python3
"""Checks real responses of the handlers against docs/openapi.yaml.

Drives a running `wxauth-local` (simulator mode: the same handler code as the
Lambda functions) through every status of the contract's error table and
validates each answer: the status must be documented for that operation, the
body must match its schema (JSON Schema 2020-12), and documented headers
(Retry-After, Allow) must be present. The spec itself is validated first.

Usage: python3 tests/openapi_conformance.py http://127.0.0.1:3000
"""
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
SPEC_URI = "urn:wxauth:openapi"


class Checker:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.spec = yaml.safe_load(SPEC_PATH.read_text())
        validate_spec(self.spec)
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self.registry = Registry().with_resource(SPEC_URI, resource)
        self.passed = 0
        self.failed = 0
        self.statuses = set()

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            node = self.pointer(node["$ref"])
        return node

    def pointer(self, ref):
        node = self.spec
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def send(self, method, path, body=None, token=None, raw=None):
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        if token:
            request.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def check(self, name, method, path, body=None, token=None, raw=None, want=None):
        status, headers, payload = self.send(method, path, body, token, raw)
        problems = []
        if want is not None and status != want:
            problems.append(f"status {status}, wanted {want}")
        operation = self.spec["paths"].get(path.split("?")[0], {}).get(method.lower())
        documented = None
        if status == 204 and operation is not None and "204" in operation["responses"]:
            self.statuses.add(status)
            self.passed += 1
            print(f"ok   {name}: {method} {path} -> {status}")
            return status, None
        fallback = None
        if operation is None and path.split("?")[0] not in self.spec["paths"]:
            # A path no route serves must be 404 in the error shape.
            fallback = ("NotFound", 404)
        elif operation is None:
            # Other methods on a documented path must be 405 in the error shape.
            fallback = ("MethodNotAllowed", 405)
        if fallback is not None:
            if status != fallback[1]:
                problems.append(f"{method} {path} is undocumented and answered {status}")
            documented = self.resolve({"$ref": f"#/components/responses/{fallback[0]}"})
        else:
            documented = operation["responses"].get(str(status))
            if documented is None:
                problems.append(f"status {status} is not documented for {method} {path}")
            documented = self.resolve(documented)
        parsed = None
        if documented is not None:
            for header, spec in (documented.get("headers") or {}).items():
                spec = self.resolve(spec)
                if spec.get("required") and header.lower() not in {h.lower() for h in headers}:
                    problems.append(f"missing header {header}")
            content = (documented.get("content") or {}).get("application/json")
            if content:
                try:
                    parsed = json.loads(payload)
                except ValueError:
                    problems.append(f"body is not JSON: {payload[:200]!r}")
                else:
                    pointer = self.pointer_of(content["schema"], operation, status, path, method)
                    validator = Draft202012Validator({"$ref": pointer}, registry=self.registry)
                    for error in validator.iter_errors(parsed):
                        problems.append(f"schema: {error.message} at {list(error.absolute_path)}")
        self.statuses.add(status)
        if problems:
            self.failed += 1
            print(f"FAIL {name}: {method} {path} -> {status}: {'; '.join(problems)}")
        else:
            self.passed += 1
            print(f"ok   {name}: {method} {path} -> {status}")
        return status, parsed

    def pointer_of(self, schema, operation, status, path, method):
        if "$ref" in schema:
            return SPEC_URI + schema["$ref"]
        escaped = path.replace("~", "~0").replace("/", "~1")
        if operation is None:
            return SPEC_URI + "#/components/schemas/Error"
        response = operation["responses"][str(status)]
        if "$ref" in response:
            return SPEC_URI + response["$ref"] + "/content/application~1json/schema"
        return f"{SPEC_URI}#/paths/{escaped}/{method.lower()}/responses/{status}/content/application~1json/schema"


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:3000"
    c = Checker(base)

    _, login = c.check("login", "POST", "/login", {"code": "conformance-1"}, want=200)
    token = login["token"]
    _, other = c.check("login other user", "POST", "/login", {"code": "someone-else"}, want=200)
    c.check("code reused", "POST", "/login", {"code": "conformance-1"}, want=401)
    c.check("code missing", "POST", "/login", {}, want=400)
    c.check("malformed JSON", "POST", "/login", raw=b"{not json", want=400)
    c.check("login blocked", "POST", "/login", {"code": "errcode-40226"}, want=403)
    c.check("rate limited", "POST", "/login", {"code": "errcode-45011"}, want=429)
    c.check("unknown errcode", "POST", "/login", {"code": "errcode-40013"}, want=502)
    c.check("WeChat busy", "POST", "/login", {"code": "errcode--1"}, want=503)
    c.check("GET /login", "GET", "/login", want=405)
    c.check("body too large", "POST", "/login", raw=b" " * 16385, want=413)

    c.check("session", "GET", "/session", token=token, want=200)
    c.check("no token", "GET", "/session", want=401)
    c.check("PUT /session", "PUT", "/session", token=token, want=405)
    c.check("session body too large", "GET", "/session", raw=b" " * 16385, token=token, want=413)
    _, signed = c.check_dev(token, "/dev/user-info", {"nickName": "conformance"})
    c.check("signature", "POST", "/session", signed, token=token, want=200)
    c.check("signature mismatch", "POST", "/session", dict(signed, signature="0" * 40), token=token, want=401)
    c.check("signature not hex", "POST", "/session", dict(signed, signature="xyz"), token=token, want=400)

    _, payload = c.check_dev(token, "/dev/phone-payload", {"phoneNumber": "13800138000"})
    c.check("phone", "POST", "/phone", payload, token=token, want=200)
    c.check("phone with another session's key", "POST", "/phone", payload, token=other["token"], want=422)
    c.check("iv not 16 bytes", "POST", "/phone", dict(payload, iv="AAAA"), token=token, want=400)
    c.check("phone without token", "POST", "/phone", payload, want=401)
    c.check("GET /phone", "GET", "/phone", token=token, want=405)
    c.check("phone body too large", "POST", "/phone", raw=b" " * 16385, token=token, want=413)
    c.check("open data: bad iv", "POST", "/open-data", dict(payload, iv="AAAA"), token=token, want=400)
    c.check("open data: other session's key", "POST", "/open-data", payload, token=other["token"], want=422)
    c.check("open data: phone payload", "POST", "/open-data", payload, token=token, want=200)

    c.check("phone by code", "POST", "/phone", {"code": "phone-13700137000"}, token=token, want=200)
    c.check("phone code reused", "POST", "/phone", {"code": "phone-13700137000"}, token=token, want=401)
    c.check("phone code rate limited", "POST", "/phone", {"code": "errcode-45011"}, token=token, want=429)
    c.check("phone code unknown errcode", "POST", "/phone", {"code": "errcode-40013"}, token=token, want=502)
    c.check("phone code and ciphertext", "POST", "/phone", dict(payload, code="c"), token=token, want=400)
    c.check("verify with WeChat", "GET", "/session?verify=wechat", token=token, want=200)
    c.check("verify=maybe", "GET", "/session?verify=maybe", token=token, want=400)

    _, me = c.check("me", "GET", "/me", token=token, want=200)
    if me is not None and me.get("openid") != login["openid"]:
        c.failed += 1
        print(f"FAIL me: {me} is not the logged-in user {login['openid']}")
    c.check("me without a token", "GET", "/me", want=401)
    c.check("POST /me", "POST", "/me", token=token, want=405)
    if me is not None and me.get("userId") != login["userId"]:
        c.failed += 1
        print(f"FAIL me: {me} is not the logged-in account {login['userId']}")

    _, account = c.check("account", "GET", "/account", token=token, want=200)
    if account is not None and account.get("purePhoneNumber") != "13700137000":
        c.failed += 1
        print(f"FAIL account: the phone number by code was not bound: {account}")
    c.check("account without a token", "GET", "/account", want=401)
    c.check("PUT /account", "PUT", "/account", token=token, want=405)
    c.check("login with device info", "POST", "/login", {"code": "device-1", "device": {"brand": "Apple", "model": "iPhone 15", "extra": 1}}, want=200)
    c.check("device not an object", "POST", "/login", {"code": "device-2", "device": "iPhone"}, want=400)
    _, doomed = c.check("login to delete", "POST", "/login", {"code": "doomed-1"}, want=200)
    if doomed is not None:
        c.check("delete account", "DELETE", "/account", token=doomed["token"], want=204)
        c.check("token refused after deletion", "GET", "/account", token=doomed["token"], want=401)
    # Several apps (the local server's simulator serves two mini-programs and an oauth app).
    _, second = c.check("login through the second mini-program", "POST", "/login", {"code": "conformance-2", "appid": "wx0000000000000001"}, want=200)
    _, h5 = c.check("login through the oauth app", "POST", "/login", {"code": "conformance-3", "appid": "wx0000000000000002"}, want=200)
    c.check("unknown app", "POST", "/login", {"code": "conformance-4", "appid": "wx9999999999999999"}, want=400)
    if h5 is not None:
        c.check("session of the oauth app", "GET", "/session", token=h5["token"], want=200)
        c.check("phone from the oauth app", "POST", "/phone", {"code": "phone-13700137000"}, token=h5["token"], want=400)
        c.check("open data from the oauth app", "POST", "/open-data", payload, token=h5["token"], want=400)
        c.check("signature from the oauth app", "POST", "/session", signed, token=h5["token"], want=400)
        c.check("verify from the oauth app", "GET", "/session?verify=wechat", token=h5["token"], want=400)
        _, linked = c.check("account of the linked apps", "GET", "/account", token=h5["token"], want=200)
        if linked is not None and len(linked.get("apps", [])) != 3:
            c.failed += 1
            print(f"FAIL account: one person, three apps: {linked}")
    c.check("unknown path", "POST", "/logins", {"code": "x"}, want=404)
    c.check("the stage-less root", "GET", "/", want=404)

    # Refresh tokens and the JWKS (the local server signs JWTs with a dev key).
    _, renewed = c.check("refresh", "POST", "/refresh", {"refreshToken": other["refreshToken"]}, want=200)
    c.check("refresh token unknown", "POST", "/refresh", {"refreshToken": "A" * 43}, want=401)
    c.check("refresh token malformed", "POST", "/refresh", {"refreshToken": "short"}, want=400)
    c.check("refresh token missing", "POST", "/refresh", {}, want=400)
    c.check("GET /refresh", "GET", "/refresh", want=405)
    c.check("session from a refresh", "GET", "/session", token=renewed["token"], want=200)
    c.check("jwks", "GET", "/.well-known/jwks.json", want=200)
    c.check("openid configuration", "GET", "/.well-known/openid-configuration", want=200)
    c.check("POST /.well-known/jwks.json", "POST", "/.well-known/jwks.json", want=405)

    c.check("logout", "DELETE", "/session", token=other["token"], want=204)
    c.check("token refused after logout", "GET", "/session", token=other["token"], want=401)
    c.check("refresh token refused after logout", "POST", "/refresh", {"refreshToken": renewed["refreshToken"]}, want=401)

    table = {400, 401, 403, 404, 405, 413, 422, 429, 502, 503}
    missing = table - c.statuses
    if missing:
        c.failed += 1
        print(f"FAIL error table statuses never exercised: {sorted(missing)}")
    print(f"openapi conformance: {c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


def check_dev(self, token, path, body):
    status, headers, payload = self.send("POST", path, body, token)
    if status != 200:
        raise SystemExit(f"{path} answered {status}: {payload!r} (is the server in simulator mode?)")
    return status, json.loads(payload)


Checker.check_dev = check_dev

if __name__ == "__main__":
    sys.exit(main())
