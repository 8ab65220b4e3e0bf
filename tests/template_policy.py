#!/usr/bin/env python3
"""Infrastructure policy as tests: reads template.yaml and checks that each
function may do exactly what it needs and nothing else, that the API is
throttled and logged, and that the session table expires items and can be
recovered.

Usage: python3 tests/template_policy.py [template.yaml]
"""
import sys
from pathlib import Path

import yaml


class CfnLoader(yaml.SafeLoader):
    """PyYAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...)."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)

TABLE_ARN = {"Fn::GetAtt": ["SessionTable", "Arn"]}
SECRET = {"Ref": "WeChatSecretArn"}
# An ARN given without Secrets Manager's 6-character suffix names the secret too.
SECRET_BY_PARTIAL_ARN = {"Fn::Sub": "${WeChatSecretArn}-??????"}
# Functions that only share WeChat's access token may write only its items.
TOKEN_ITEMS_ONLY = str({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["wxauth#access-token#*"]}})
# What the authorizer may read: session items (64 hex digits, no prefixed key),
# and of them only the key, who and until when (shared/src/aws/dynamodb/items.rs,
# CALLER_ATTRIBUTES; tests/tests/authorizer.rs checks the requests against it).
SESSION_KEY_PATTERN = "?" * 64
# A JWT session's key: SHA-256 of its sid in base64url (43 characters).
JWT_SESSION_KEY_PATTERN = "?" * 43
SIGNING_SECRET = {"Ref": "SigningKeySecret"}
PUBLISHED_KEYS_ONLY = str({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["signingkeys#published"]}})
PUBLISHED_KEYS_PROJECTED = str({
    "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["signingkeys#published"], "dynamodb:Attributes": ["pk", "keys"]},
    "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
})
CALLER_ATTRIBUTES = ["pk", "userId", "appid", "openid", "unionid", "expiresAt"]
LOG_TABLE_ARN = {"Fn::GetAtt": ["LoginLogTable", "Arn"]}
# decrypt-phone binds the phone number: it may update account items (an
# account's home: an identity, or an account from before several apps)
# only, and of them the phone fields only.
PHONE_FIELDS_OF_ACCOUNTS_ONLY = str({
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["account#*", "identity#*"]},
    "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "userId", "phoneNumber", "purePhoneNumber", "countryCode", "phoneBoundAt"]},
    "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
})
# check-session's logout revokes a refresh family: the identity's lists only.
FAMILY_LISTS_OF_ACCOUNTS_ONLY = str({
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["account#*", "identity#*"]},
    "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "version", "sessions", "families", "refreshTokens", "sessionFamilies"]},
    "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
})
# What login deletes: never an account, an identity, a unionid's item, the
# index, the published key set (a JWT outage) or the access token;
# check-session deletes accounts.
LOGIN_DELETES = str({"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["signingkeys#*", "wxauth#*", "account#*", "identity#*", "unionid#*", "user#*"]}})
CHECK_SESSION_DELETES = str({"ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["signingkeys#*", "wxauth#*"]}})
CALLER_FIELDS_OF_SESSIONS_ONLY = str({
    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [SESSION_KEY_PATTERN, JWT_SESSION_KEY_PATTERN]},
    "ForAllValues:StringNotLike": {"dynamodb:LeadingKeys": ["*#*"]},
    "ForAllValues:StringEquals": {"dynamodb:Attributes": CALLER_ATTRIBUTES},
    "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
})
EXPECTED = {
    "LoginFunction": {
        ("dynamodb:PutItem", str(TABLE_ARN), None),
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:BatchGetItem", str(TABLE_ARN), None),
        ("dynamodb:UpdateItem", str(TABLE_ARN), None),
        ("dynamodb:DeleteItem", str(TABLE_ARN), LOGIN_DELETES),
        ("dynamodb:PutItem", str(LOG_TABLE_ARN), None),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
        ("secretsmanager:GetSecretValue", str(SECRET_BY_PARTIAL_ARN), None),
        ("secretsmanager:GetSecretValue", str(SIGNING_SECRET), None),
    },
    "DecryptPhoneFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:PutItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("dynamodb:UpdateItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("dynamodb:UpdateItem", str(TABLE_ARN), PHONE_FIELDS_OF_ACCOUNTS_ONLY),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
        ("secretsmanager:GetSecretValue", str(SECRET_BY_PARTIAL_ARN), None),
    },
    "CheckSessionFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:BatchGetItem", str(TABLE_ARN), None),
        ("dynamodb:DeleteItem", str(TABLE_ARN), CHECK_SESSION_DELETES),
        ("dynamodb:UpdateItem", str(TABLE_ARN), FAMILY_LISTS_OF_ACCOUNTS_ONLY),
        ("dynamodb:PutItem", str(LOG_TABLE_ARN), None),
        ("dynamodb:PutItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("dynamodb:UpdateItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
        ("secretsmanager:GetSecretValue", str(SECRET_BY_PARTIAL_ARN), None),
    },
    # The session table, read only: no appsecret, no WeChat, no writes.
    "AuthorizerFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), CALLER_FIELDS_OF_SESSIONS_ONLY),
        ("dynamodb:GetItem", str(TABLE_ARN), PUBLISHED_KEYS_PROJECTED),
    },
    # The signing key's secret, and the published set's item only.
    "RotateSigningKeyFunction": {
        ("secretsmanager:DescribeSecret", str(SIGNING_SECRET), None),
        ("secretsmanager:GetSecretValue", str(SIGNING_SECRET), None),
        ("secretsmanager:PutSecretValue", str(SIGNING_SECRET), None),
        ("secretsmanager:UpdateSecretVersionStage", str(SIGNING_SECRET), None),
        ("dynamodb:GetItem", str(TABLE_ARN), PUBLISHED_KEYS_ONLY),
        ("dynamodb:PutItem", str(TABLE_ARN), PUBLISHED_KEYS_ONLY),
    },
}


def load(default, argv):
    """The template named on the command line, else `default` (relative to the
    repository): its text, and the template parsed with CloudFormation's tags."""
    path = Path(argv[1] if len(argv) > 1 else Path(__file__).resolve().parent.parent / default)
    raw = path.read_text()
    return raw, yaml.load(raw, Loader=CfnLoader)


class Checks:
    """Prints each check as it runs; `summary` prints the count and gives the exit code."""

    def __init__(self, suite):
        self.suite = suite
        self.results = []

    def __call__(self, name, ok, detail=""):
        self.results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    def summary(self):
        failed = self.results.count(False)
        print(f"{self.suite}: {len(self.results) - failed} passed, {failed} failed")
        return 1 if failed else 0


def as_list(value):
    return value if isinstance(value, list) else [value]


def main():
    raw, template = load("template.yaml", sys.argv)
    resources = template["Resources"]
    check = Checks("template policy")

    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    check("exactly the five functions", set(functions) == set(EXPECTED), str(sorted(functions)))
    for name, function in functions.items():
        granted = set()
        wildcard = False
        for policy in as_list(function["Properties"].get("Policies", [])):
            if not isinstance(policy, dict) or "Statement" not in policy:
                check(f"{name}: only inline statements (no managed policies)", False, str(policy))
                continue
            for statement in policy["Statement"]:
                check(f"{name}: statement allows, never denies", statement.get("Effect") == "Allow", str(statement))
                for action in as_list(statement["Action"]):
                    for resource in as_list(statement["Resource"]):
                        wildcard |= "*" in str(action) or "*" in str(resource)
                        condition = statement.get("Condition")
                        granted.add((action, str(resource), None if condition is None else str(condition)))
        check(f"{name}: exactly the actions and resources it needs", granted == EXPECTED.get(name), f"{sorted(granted)}")
        check(f"{name}: no wildcard action or resource", not wildcard)
        metadata = function.get("Metadata", {})
        check(f"{name}: built by cargo-lambda", metadata.get("BuildMethod") == "rust-cargolambda")

    globals_ = template["Globals"]["Function"]
    check("functions run arm64 on provided.al2023", globals_["Architectures"] == ["arm64"] and globals_["Runtime"] == "provided.al2023")
    check("function timeout 10 s (answers within 8 s)", globals_["Timeout"] == 10, str(globals_.get("Timeout")))
    logging = globals_.get("LoggingConfig", {})
    check("functions log JSON lines at INFO", logging.get("LogFormat") == "JSON" and logging.get("ApplicationLogLevel") == "INFO", str(logging))

    api = resources["HttpApi"]["Properties"]
    route = api.get("DefaultRouteSettings", {})
    check("API throttling: rate and burst set", "ThrottlingRateLimit" in route and "ThrottlingBurstLimit" in route, str(route))
    check("API access log configured", "DestinationArn" in api.get("AccessLogSettings", {}))
    fmt = api.get("AccessLogSettings", {}).get("Format", "")
    check("API access log carries no headers or body", "header" not in fmt.lower() and "body" not in fmt.lower(), fmt)

    table = resources["SessionTable"]["Properties"]
    check("table key is pk (String), no sort key",
          table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
          and table["AttributeDefinitions"] == [{"AttributeName": "pk", "AttributeType": "S"}])
    check("table is on-demand", table.get("BillingMode") == "PAY_PER_REQUEST")
    check("table TTL on expiresAt", table.get("TimeToLiveSpecification") == {"AttributeName": "expiresAt", "Enabled": True})
    pitr = template["Parameters"].get("PointInTimeRecovery", {})
    check("table point-in-time recovery is a parameter, off by default",
          table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") == {"Fn::If": ["WantsPointInTimeRecovery", True, False]}
          and pitr.get("Default") == "false" and template["Conditions"].get("WantsPointInTimeRecovery") == {"Fn::Equals": [{"Ref": "PointInTimeRecovery"}, "true"]},
          str(pitr))
    check("the table survives the stack's deletion and its replacement (accounts)",
          (resources["SessionTable"].get("DeletionPolicy"), resources["SessionTable"].get("UpdateReplacePolicy")) == ("Retain", "Retain"))
    check("the secret parameter takes the ARN with or without its suffix",
          template["Parameters"]["WeChatSecretArn"]["AllowedPattern"].endswith(":secret:.+$"))
    check("table encrypted", table.get("SSESpecification", {}).get("SSEEnabled") is True)

    # The login log: userId + at, TTL on expiresAt, kept like the accounts, the
    # retention a parameter (default 180 days: six months), written by login and
    # check-session only.
    log = resources["LoginLogTable"]
    log_props = log["Properties"]
    check("login log: partition userId, sort at (Strings), on demand, encrypted",
          log_props["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}]
          and sorted(d["AttributeName"] + d["AttributeType"] for d in log_props["AttributeDefinitions"]) == ["atS", "userIdS"]
          and log_props.get("BillingMode") == "PAY_PER_REQUEST" and log_props.get("SSESpecification", {}).get("SSEEnabled") is True)
    check("login log: TTL on expiresAt", log_props.get("TimeToLiveSpecification") == {"AttributeName": "expiresAt", "Enabled": True})
    check("login log: retained with the stack's deletion", (log.get("DeletionPolicy"), log.get("UpdateReplacePolicy")) == ("Retain", "Retain"))
    retention = template["Parameters"].get("LoginLogRetentionDays", {})
    check("login log retention: a parameter, 180 days by default, at least 1",
          retention.get("Default") == 180 and retention.get("MinValue") == 1, str(retention))
    for name in ("LoginFunction", "CheckSessionFunction"):
        variables = functions[name]["Properties"]["Environment"]["Variables"]
        check(f"{name}: LOGIN_LOG_TABLE and LOGIN_LOG_RETENTION_DAYS",
              variables.get("LOGIN_LOG_TABLE") == {"Ref": "LoginLogTable"}
              and variables.get("LOGIN_LOG_RETENTION_DAYS") == {"Ref": "LoginLogRetentionDays"}, str(variables))
    phone_vars = functions["DecryptPhoneFunction"]["Properties"]["Environment"]["Variables"]
    check("decrypt-phone: BIND_PHONE from the parameter (default true)",
          phone_vars.get("BIND_PHONE") == {"Ref": "BindPhone"} and template["Parameters"]["BindPhone"]["Default"] == "true")
    account_routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in functions["CheckSessionFunction"]["Properties"]["Events"].values()}
    check("GET and DELETE /account (and its 405s) on check-session",
          {("GET", "/account"), ("DELETE", "/account"), ("ANY", "/account")} <= account_routes, str(account_routes))

    # The authorizer: on the HTTP API, payload 2.0, simple responses, identity from
    # the Authorization header, its cache TTL a parameter (default 0, at most 3600).
    authorizers = api.get("Auth", {}).get("Authorizers", {})
    authorizer = authorizers.get("WxAuthAuthorizer", {})
    check("one authorizer on the HTTP API", list(authorizers) == ["WxAuthAuthorizer"], str(list(authorizers)))
    check("authorizer is the authorizer function",
          authorizer.get("FunctionArn") == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}, str(authorizer.get("FunctionArn")))
    check("authorizer: payload 2.0, simple responses",
          authorizer.get("AuthorizerPayloadFormatVersion") == "2.0" and authorizer.get("EnableSimpleResponses") is True)
    identity = authorizer.get("Identity", {})
    check("authorizer identity: the Authorization header", identity.get("Headers") == ["Authorization"], str(identity))
    check("authorizer cache TTL is the parameter", identity.get("ReauthorizeEvery") == {"Ref": "AuthorizerResultTtlInSeconds"}, str(identity))
    ttl = template["Parameters"].get("AuthorizerResultTtlInSeconds", {})
    session_ttl = template["Parameters"]["SessionTtlSeconds"]
    check("cache TTL parameter: default 0, at most the shortest session the template allows",
          (ttl.get("Default"), ttl.get("MinValue")) == (0, 0) and ttl.get("MaxValue") is not None
          and ttl["MaxValue"] <= session_ttl["MinValue"], str(ttl))
    login_props = resources["LoginFunction"]["Properties"]
    reserved = template["Parameters"].get("LoginReservedConcurrency", {})
    check("login's concurrency is reserved (and capped) by a parameter, 0 = none",
          login_props.get("ReservedConcurrentExecutions") == {"Fn::If": ["HasLoginReservedConcurrency", {"Ref": "LoginReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
          and reserved.get("Default", 0) > 0 and reserved.get("MinValue") == 0
          and template["Conditions"].get("HasLoginReservedConcurrency") == {"Fn::Not": [{"Fn::Equals": [{"Ref": "LoginReservedConcurrency"}, 0]}]},
          str(login_props.get("ReservedConcurrentExecutions")))
    for name, function in functions.items():
        if name != "LoginFunction":
            check(f"{name}: no reserved concurrency (it keeps the unreserved pool)",
                  "ReservedConcurrentExecutions" not in function["Properties"])
    authorizer_vars = resources["AuthorizerFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    check("authorizer function has no variable but the table, ISSUER and AUDIENCE",
          set(authorizer_vars) == {"ISSUER", "AUDIENCE"}, str(authorizer_vars))

    # Refresh tokens and JWTs (API.md, "Refresh tokens", "JWT access tokens").
    issuer = {"Fn::If": ["HasIssuerParameter", {"Ref": "Issuer"}, {"Fn::If": ["HasDomain", {"Fn::Sub": "https://${DomainName}"}, {"Ref": "AWS::NoValue"}]}]}
    check("JWT mode needs an issuer: the parameter or the custom domain",
          template["Conditions"].get("HasJwt") == {"Fn::Or": [{"Fn::Condition": "HasIssuerParameter"}, {"Fn::Condition": "HasDomain"}]})
    login_vars = functions["LoginFunction"]["Properties"]["Environment"]["Variables"]
    check("login: refresh, signing and issuer variables from the parameters",
          login_vars.get("REFRESH_TTL_SECONDS") == {"Ref": "RefreshTtlSeconds"}
          and login_vars.get("REFRESH_REUSE_GRACE_SECONDS") == {"Ref": "RefreshReuseGraceSeconds"}
          and login_vars.get("SIGNING_KEY_SECRET_ID") == {"Fn::If": ["HasJwt", SIGNING_SECRET, {"Ref": "AWS::NoValue"}]}
          and login_vars.get("SIGNING_KEY_LEAD_SECONDS") == {"Ref": "SigningKeyLeadSeconds"}
          and login_vars.get("ISSUER") == issuer and login_vars.get("AUDIENCE") == {"Ref": "Audience"}, str(login_vars))
    for name in ("DecryptPhoneFunction", "CheckSessionFunction", "AuthorizerFunction"):
        variables = functions[name]["Properties"]["Environment"]["Variables"]
        check(f"{name}: ISSUER and AUDIENCE, never the signing key",
              variables.get("ISSUER") == issuer and variables.get("AUDIENCE") == {"Ref": "Audience"}
              and "SIGNING_KEY_SECRET_ID" not in variables, str(variables))
    # Several apps: every function that lists apps gets WECHAT_APPS, from
    # WeChatApps or (a stack from before several apps) WeChatAppId; one of
    # the two must be set; risk control is login's, off by default.
    apps = {"Fn::If": ["HasApps", {"Ref": "WeChatApps"}, {"Ref": "WeChatAppId"}]}
    for name in ("LoginFunction", "DecryptPhoneFunction", "CheckSessionFunction"):
        variables = functions[name]["Properties"]["Environment"]["Variables"]
        check(f"{name}: WECHAT_APPS from WeChatApps or WeChatAppId, never WECHAT_APPID",
              variables.get("WECHAT_APPS") == apps and "WECHAT_APPID" not in variables, str(variables))
    authorizer_vars = functions["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
    check("the authorizer lists no apps", "WECHAT_APPS" not in authorizer_vars, str(authorizer_vars))
    cors = api.get("CorsConfiguration", {})
    check("CORS only for the H5 origins listed, off by default",
          isinstance(cors, dict) and cors.get("Fn::If", [None])[0] == "HasCorsOrigins"
          and cors["Fn::If"][2] == {"Ref": "AWS::NoValue"}
          and cors["Fn::If"][1].get("AllowOrigins") == {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]}
          and template["Parameters"]["CorsAllowOrigins"].get("Default") == "", str(cors))
    check("WeChatApps or WeChatAppId, not both and not neither",
          len(template.get("Rules", {}).get("TheApps", {}).get("Assertions", [])) == 2, str(template.get("Rules")))
    check("risk control: login's, off by default, rank 4",
          login_vars.get("RISK_CONTROL") == {"Ref": "RiskControl"} and login_vars.get("RISK_REJECT_RANK") == {"Ref": "RiskRejectRank"}
          and template["Parameters"]["RiskControl"].get("Default") == "off" and template["Parameters"]["RiskRejectRank"].get("Default") == 4,
          str(login_vars))
    defaults = {k: template["Parameters"][k].get("Default") for k in ("RefreshTtlSeconds", "RefreshReuseGraceSeconds", "SigningKeyLeadSeconds", "SigningKeyRotationDays", "Audience", "Issuer")}
    check("defaults: 30-day refresh tokens, 30 s grace, 2 h 10 min lead, 90-day rotation, aud wxauth, no issuer",
          defaults == {"RefreshTtlSeconds": 2592000, "RefreshReuseGraceSeconds": 30, "SigningKeyLeadSeconds": 7800,
                       "SigningKeyRotationDays": 90, "Audience": "wxauth", "Issuer": ""}, str(defaults))
    login_routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in functions["LoginFunction"]["Properties"]["Events"].values()}
    check("POST /refresh (and its 405s) on login", {("POST", "/refresh"), ("ANY", "/refresh")} <= login_routes, str(login_routes))
    check("the JWKS and the OpenID configuration on check-session, no authorizer",
          {("GET", "/.well-known/jwks.json"), ("GET", "/.well-known/openid-configuration")} <= account_routes, str(account_routes))
    readers = [name for name, f in functions.items() if "SigningKeySecret" in str(f["Properties"].get("Policies"))]
    check("only login and the rotation may read the signing key", sorted(readers) == ["LoginFunction", "RotateSigningKeyFunction"], str(readers))
    jwt = resources.get("JwtAuthorizer", {})
    jwt_props = jwt.get("Properties", {})
    check("API Gateway's JWT authorizer on the HTTP API: issuer, audience, the Authorization header, only with an issuer",
          jwt.get("Type") == "AWS::ApiGatewayV2::Authorizer" and jwt.get("Condition") == "HasJwt"
          and jwt_props.get("ApiId") == {"Ref": "HttpApi"} and jwt_props.get("AuthorizerType") == "JWT"
          and jwt_props.get("IdentitySource") == ["$request.header.Authorization"]
          and jwt_props.get("JwtConfiguration") == {"Issuer": {"Fn::If": ["HasIssuerParameter", {"Ref": "Issuer"}, {"Fn::Sub": "https://${DomainName}"}]}, "Audience": [{"Ref": "Audience"}]},
          str(jwt))
    schedule = resources.get("SigningKeyRotation", {}).get("Properties", {})
    check("the signing key rotates at deploy and every SigningKeyRotationDays, by the rotation function",
          schedule.get("SecretId") == SIGNING_SECRET and schedule.get("RotateImmediatelyOnUpdate") is True
          and schedule.get("RotationLambdaARN") == {"Fn::GetAtt": ["RotateSigningKeyFunction", "Arn"]}
          and schedule.get("RotationRules") == {"AutomaticallyAfterDays": {"Ref": "SigningKeyRotationDays"}}, str(schedule))
    rotation = functions["RotateSigningKeyFunction"]["Properties"]
    rotation_vars = rotation["Environment"]["Variables"]
    check("the rotation keeps keys published for login's lead and session lifetime",
          rotation_vars.get("SIGNING_KEY_LEAD_SECONDS") == {"Ref": "SigningKeyLeadSeconds"}
          and rotation_vars.get("SESSION_TTL_SECONDS") == {"Ref": "SessionTtlSeconds"}, str(rotation_vars))
    check("the rotation has the CPU and the time RSA key generation's tail needs (>= 512 MB, >= 30 s)",
          rotation.get("MemorySize", 0) >= 512 and rotation.get("Timeout", 0) >= 30,
          f"{rotation.get('MemorySize')} MB, {rotation.get('Timeout')} s")
    rotation_permission = resources.get("RotationInvokePermission", {}).get("Properties", {})
    check("Secrets Manager (of this account) may invoke the rotation function",
          rotation_permission.get("Principal") == "secretsmanager.amazonaws.com"
          and rotation_permission.get("FunctionName") == {"Fn::GetAtt": ["RotateSigningKeyFunction", "Arn"]}
          and rotation_permission.get("SourceAccount") == {"Ref": "AWS::AccountId"}, str(rotation_permission))
    secret = resources.get("SigningKeySecret", {}).get("Properties", {})
    check("the signing key secret starts as a placeholder that is no key", "privateKey" not in str(secret.get("SecretString")), str(secret))
    permission = resources.get("AuthorizerInvokePermission", {}).get("Properties", {})
    check("API Gateway may invoke the authorizer for this API's authorizers",
          permission.get("Action") == "lambda:InvokeFunction"
          and permission.get("Principal") == "apigateway.amazonaws.com"
          and permission.get("FunctionName") == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
          and "${HttpApi}/authorizers/*" in str(permission.get("SourceArn")), str(permission))
    me = resources["CheckSessionFunction"]["Properties"]["Events"].get("Me", {}).get("Properties", {})
    check("GET /me on check-session, behind the authorizer",
          (me.get("Path"), me.get("Method"), me.get("Auth", {}).get("Authorizer")) == ("/me", "GET", "WxAuthAuthorizer"), str(me))
    others = [name for name, f in functions.items() for e in f["Properties"].get("Events", {}).values()
              if e.get("Properties", {}).get("Auth") and name != "CheckSessionFunction"]
    check("no other route is behind the authorizer", not others, str(others))
    outputs = template.get("Outputs", {})
    exported = {name: o.get("Export", {}).get("Name") for name, o in outputs.items()}
    check("the authorizer's ARN is exported",
          exported.get("AuthorizerFunctionArn") == {"Fn::Sub": "${AWS::StackName}-AuthorizerFunctionArn"}
          and outputs["AuthorizerFunctionArn"]["Value"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}, str(exported))
    check("the API id is exported", exported.get("HttpApiId") == {"Fn::Sub": "${AWS::StackName}-HttpApiId"}, str(exported))
    check("the JWT authorizer's id is exported (with an issuer)",
          exported.get("JwtAuthorizerId") == {"Fn::Sub": "${AWS::StackName}-JwtAuthorizerId"}
          and outputs["JwtAuthorizerId"].get("Condition") == "HasJwt", str(exported))

    # Custom domain (ICP-filed): REGIONAL, TLS 1.2, mapped to the API, alias record
    # only with a hosted zone; nothing without the parameters.
    domain = resources.get("CustomDomain", {})
    config = (domain.get("Properties", {}).get("DomainNameConfigurations") or [{}])[0]
    check("custom domain: REGIONAL, TLS_1_2, only with DomainName",
          domain.get("Condition") == "HasDomain" and config.get("EndpointType") == "REGIONAL"
          and config.get("SecurityPolicy") == "TLS_1_2", str(domain))
    mapping = resources.get("CustomDomainMapping", {})
    check("custom domain mapped to the HTTP API's $default stage",
          mapping.get("Condition") == "HasDomain" and mapping.get("Properties", {}).get("ApiId") == {"Ref": "HttpApi"}
          and mapping["Properties"].get("Stage") == "$default", str(mapping))
    record = resources.get("CustomDomainRecord", {})
    alias = record.get("Properties", {}).get("AliasTarget", {})
    check("alias record only with a hosted zone, to the regional domain",
          record.get("Condition") == "HasHostedZone"
          and alias.get("DNSName") == {"Fn::GetAtt": ["CustomDomain", "RegionalDomainName"]}, str(record))
    check("a custom domain requires its certificate (Rules)", "CertificateForTheDomain" in template.get("Rules", {}))
    check("outputs: CNAME target and https base URL, only with a domain",
          all(outputs.get(o, {}).get("Condition") == "HasDomain" for o in ("CustomDomainTarget", "CustomDomainUrl")))

    # Alarms, each notifying the one topic; an e-mail subscription only when asked.
    alarms = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}

    def watched(props):
        stats = [props] if "MetricName" in props else [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        return [(m["Namespace"], m["MetricName"], {d["Name"]: d["Value"] for d in m.get("Dimensions", [])}) for m in stats]

    def fn(name):
        return {"Ref": name}

    web_functions = ["LoginFunction", "DecryptPhoneFunction", "CheckSessionFunction"]
    all_functions = web_functions + ["AuthorizerFunction"]
    errors_watched = all_functions + ["RotateSigningKeyFunction"]
    expectations = {
        "UpstreamUnavailableAlarm": [("wxauth", "Requests", {"Function": fn(f), "Outcome": "upstream_unavailable"}) for f in web_functions],
        "WeChatFailuresAlarm": [("wxauth", "WeChatCalls", {"Function": fn(f), "Result": r}) for f in web_functions for r in ("-1", "timeout", "45011")],
        "ForcedRefreshRefusedAlarm": [("wxauth", "ForcedRefreshRefused", {"Function": fn(f)}) for f in ("DecryptPhoneFunction", "CheckSessionFunction")],
        "TableThrottlesAlarm": [("AWS/DynamoDB", m, {"TableName": {"Ref": "SessionTable"}}) for m in ("ReadThrottleEvents", "WriteThrottleEvents")],
        "TableErrorsAlarm": [("AWS/DynamoDB", "SystemErrors", {"TableName": {"Ref": "SessionTable"}, "Operation": o}) for o in ("GetItem", "PutItem", "DeleteItem", "TransactWriteItems")],
        "FunctionErrorsAlarm": [("AWS/Lambda", "Errors", {"FunctionName": fn(f)}) for f in errors_watched],
        "FunctionThrottlesAlarm": [("AWS/Lambda", "Throttles", {"FunctionName": fn(f)}) for f in all_functions],
        "AuthorizerErrorsAlarm": [("wxauth", "AuthorizerErrors", {"Function": fn("AuthorizerFunction")})],
        "LoginConcurrencyAlarm": [("AWS/Lambda", "ConcurrentExecutions", {"FunctionName": fn("LoginFunction")})],
        "DisabledAccountLoginsAlarm": [("wxauth", "Requests", {"Function": fn("LoginFunction"), "Outcome": "account_disabled"})],
        "RefreshReuseAlarm": [("wxauth", "RefreshReuse", {"Function": fn("LoginFunction")})],
        "AccountConflictsAlarm": [("wxauth", "AccountConflicts", {"Function": fn("LoginFunction")})],
    }
    check("exactly the expected alarms", set(alarms) == set(expectations), str(sorted(alarms)))
    for name, metrics in expectations.items():
        props = alarms.get(name, {})
        got = watched(props)
        check(f"{name} watches its metrics", all(m in got for m in metrics), f"{got}")
        check(f"{name} notifies the alarm topic", props.get("AlarmActions") == [{"Ref": "AlarmTopic"}], str(props.get("AlarmActions")))
        check(f"{name}: no data is not an alarm", props.get("TreatMissingData") == "notBreaching")
    concurrency = alarms.get("LoginConcurrencyAlarm", {})
    check("the login concurrency alarm: 80 % of the reservation, only with one",
          resources.get("LoginConcurrencyAlarm", {}).get("Condition") == "HasLoginReservedConcurrency"
          and concurrency.get("Threshold") == 80
          and any("${LoginReservedConcurrency}" in str(m.get("Expression", "")) for m in concurrency.get("Metrics", [])),
          str(concurrency))
    rate = alarms.get("UpstreamUnavailableAlarm", {})
    check("the 503 alarm is a rate over all requests",
          any("/" in m.get("Expression", "") for m in rate.get("Metrics", []))
          and ("wxauth", "Requests", {"Function": fn("LoginFunction")}) in watched(rate))
    subscription = resources.get("AlarmEmailSubscription", {})
    check("alarm e-mail subscription only when AlarmEmail is set",
          subscription.get("Condition") == "HasAlarmEmail"
          and subscription.get("Properties", {}).get("Protocol") == "email"
          and subscription["Properties"].get("TopicArn") == {"Ref": "AlarmTopic"}, str(subscription))
    body = str(resources.get("Dashboard", {}).get("Properties", {}).get("DashboardBody", ""))
    shown = ["Requests", "upstream_unavailable", "WeChatCalls", "WeChatLatency", "AccessTokenFetches",
             "ForcedRefreshRefused", "AuthorizerDecisions", "AuthorizerErrors", "ReadThrottleEvents",
             "SystemErrors", '"Errors"', '"Throttles"', "ConcurrentExecutions", "SessionWriteConfirmed", "CodeSpentByOurRetry",
             "AccountsCreated", "AccountsDeleted", "account_disabled", "Refreshes", "RefreshReuse", "invalid_refresh_token"]
    check("one dashboard with the alarms' figures", all(f in body for f in shown), str([f for f in shown if f not in body]))
    check("the dashboard's name comes from the stack", "${AWS::StackName}" in str(resources["Dashboard"]["Properties"]["DashboardName"]))

    # No partition or URL suffix hard-coded: the template deploys in AWS China too.
    hard = [line.strip() for line in raw.splitlines()
            if ("arn:aws:" in line or ".amazonaws.com/" in line or "amazonaws.com\"" in line) and "AllowedPattern" not in line]
    check("no hard-coded partition or URL suffix", not hard, str(hard))
    for name in ("LoginFunctionArn", "DecryptPhoneFunctionArn", "CheckSessionFunctionArn"):
        check(f"{name} exported for the REST + WAF stack",
              exported.get(name) == {"Fn::Sub": "${AWS::StackName}-" + name}, str(exported.get(name)))

    groups = [v for v in resources.values() if v["Type"] == "AWS::Logs::LogGroup"]
    check("every log group has a retention", groups and all("RetentionInDays" in g["Properties"] for g in groups))
    check("a log group per function and one for the API", len(groups) == len(functions) + 1, str(len(groups)))

    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
