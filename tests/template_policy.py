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
# Functions that only share WeChat's access token may write only its items.
TOKEN_ITEMS_ONLY = str({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["wxauth#access-token#*"]}})
EXPECTED = {
    "LoginFunction": {
        ("dynamodb:PutItem", str(TABLE_ARN), None),
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:DeleteItem", str(TABLE_ARN), None),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
    },
    "DecryptPhoneFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:PutItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
    },
    "CheckSessionFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), None),
        ("dynamodb:DeleteItem", str(TABLE_ARN), None),
        ("dynamodb:PutItem", str(TABLE_ARN), TOKEN_ITEMS_ONLY),
        ("secretsmanager:GetSecretValue", str(SECRET), None),
    },
    # The session table, read only: no appsecret, no WeChat, no writes.
    "AuthorizerFunction": {
        ("dynamodb:GetItem", str(TABLE_ARN), None),
    },
}


def as_list(value):
    return value if isinstance(value, list) else [value]


def main():
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "template.yaml")
    template = yaml.load(path.read_text(), Loader=CfnLoader)
    resources = template["Resources"]
    checks = []

    def check(name, ok, detail=""):
        checks.append(ok)
        print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}")

    functions = {k: v for k, v in resources.items() if v["Type"] == "AWS::Serverless::Function"}
    check("exactly the four functions", set(functions) == set(EXPECTED), str(sorted(functions)))
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
    check("table point-in-time recovery", table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled") is True)
    check("table encrypted", table.get("SSESpecification", {}).get("SSEEnabled") is True)

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
    check("cache TTL parameter: default 0, 0 to 3600",
          (ttl.get("Default"), ttl.get("MinValue"), ttl.get("MaxValue")) == (0, 0, 3600), str(ttl))
    check("authorizer function has no variable but the table",
          "Variables" not in resources["AuthorizerFunction"]["Properties"].get("Environment", {}))
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

    groups = [v for v in resources.values() if v["Type"] == "AWS::Logs::LogGroup"]
    check("every log group has a retention", groups and all("RetentionInDays" in g["Properties"] for g in groups))
    check("a log group per function and one for the API", len(groups) == len(functions) + 1, str(len(groups)))

    failed = checks.count(False)
    print(f"template policy: {len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
