"""Reference Python implementation of wxauth's login and check-session, the way the
Python seeds do it: boto3 clients built at import, run under awslambdaric. Used
only by the cold-start harness (tests/src/bin/coldstart.rs) to measure the Rust
functions against it in the same run; it follows the same contract for the
happy path and the common errors.
"""
import base64
import hashlib
import json
import os
import secrets
import time
import urllib.parse
import urllib.request

import boto3

TABLE = os.environ["SESSION_TABLE"]
TTL = int(os.environ.get("SESSION_TTL_SECONDS", "600"))
API_BASE = os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com")
dynamodb = boto3.client("dynamodb")
_secretsmanager = None
_appsecret = None


def _response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def _error(status, code, message):
    return _response(status, {"error": code, "message": message})


def _body(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def _appsecret_value():
    global _secretsmanager, _appsecret
    if _appsecret is None:
        if _secretsmanager is None:
            _secretsmanager = boto3.client("secretsmanager")
        text = _secretsmanager.get_secret_value(SecretId=os.environ["WECHAT_SECRET_ID"])["SecretString"].strip()
        _appsecret = json.loads(text)["appsecret"] if text.startswith("{") else text
    return _appsecret


def login(event, context):
    try:
        code = _body(event)["code"]
    except (ValueError, KeyError, TypeError):
        return _error(400, "invalid_request", "code is missing.")
    query = urllib.parse.urlencode({
        "appid": os.environ["WECHAT_APPID"], "secret": _appsecret_value(),
        "js_code": code, "grant_type": "authorization_code",
    })
    with urllib.request.urlopen(f"{API_BASE}/sns/jscode2session?{query}", timeout=5) as answer:
        wx = json.loads(answer.read())
    if wx.get("errcode"):
        return _error(401, "invalid_code", "WeChat refused the code.")
    token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    now = int(time.time())
    item = {
        "pk": {"S": hashlib.sha256(token.encode()).hexdigest()},
        "openid": {"S": wx["openid"]}, "sessionKey": {"S": wx["session_key"]},
        "createdAt": {"N": str(now)}, "expiresAt": {"N": str(now + TTL)},
    }
    dynamodb.put_item(TableName=TABLE, Item=item, ConditionExpression="attribute_not_exists(pk)")
    return _response(200, {"token": token, "expiresIn": TTL, "openid": wx["openid"]})


def check_session(event, context):
    auth = (event.get("headers") or {}).get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return _error(401, "unauthorized", "No session token.")
    token = auth[7:].strip()
    item = dynamodb.get_item(
        TableName=TABLE, Key={"pk": {"S": hashlib.sha256(token.encode()).hexdigest()}}, ConsistentRead=True,
    ).get("Item")
    now = int(time.time())
    if not item or int(item["expiresAt"]["N"]) <= now:
        return _error(401, "unauthorized", "The session is unknown or has expired.")
    return _response(200, {"valid": True, "openid": item["openid"]["S"], "expiresIn": int(item["expiresAt"]["N"]) - now})
