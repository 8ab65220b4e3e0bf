#!/usr/bin/env python3
"""Policy tests for infra/rest-waf.yaml, the REST API + AWS WAF deployment in
front of a wxauth stack's functions: every contract route proxies to the right
exported function, API Gateway may invoke exactly those, GET /me sits behind the
wxauth authorizer (REST TOKEN), and the web ACL limits each client IP (POST
/login more strictly) with a 429 in the contract's shape, plus AWS's common rules.

Usage: python3 tests/rest_waf_policy.py [infra/rest-waf.yaml]
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from template_policy import Checks, load  # noqa: E402

ROUTES = {
    "/login": "LoginFunctionArn",
    "/phone": "DecryptPhoneFunctionArn",
    "/open-data": "DecryptPhoneFunctionArn",
    "/session": "CheckSessionFunctionArn",
    "/me": "CheckSessionFunctionArn",
}


def imported(value):
    """The export name an `Fn::Sub [uri, {Function: Fn::ImportValue ...}]` imports."""
    function = value["Fn::Sub"][1]["Function"]["Fn::ImportValue"]["Fn::Sub"]
    return function.replace("${WxAuthStackName}-", "")


def main():
    _, template = load("infra/rest-waf.yaml", sys.argv)
    resources = template["Resources"]
    check = Checks("rest-waf policy")

    api = resources["RestApi"]["Properties"]
    check("a REGIONAL REST API", api["EndpointConfiguration"]["Types"] == ["REGIONAL"])
    paths = api["Body"]["paths"]
    check("exactly the contract's routes", set(paths) == set(ROUTES), str(sorted(paths)))
    for route, export in ROUTES.items():
        methods = paths.get(route, {})
        for method, operation in methods.items():
            integration = operation.get("x-amazon-apigateway-integration", {})
            check(f"{route} {method}: Lambda proxy to {export}",
                  integration.get("type") == "aws_proxy" and integration.get("httpMethod") == "POST"
                  and imported(integration["uri"]) == export, json.dumps(integration, default=str))
    check("every method of the public routes reaches the function (405 in the contract's shape)",
          all("x-amazon-apigateway-any-method" in paths[r] for r in ROUTES if r != "/me"))
    me = paths["/me"]
    check("GET /me only, behind the wxauth authorizer", list(me) == ["get"] and me["get"].get("security") == [{"WxAuth": []}])
    scheme = api["Body"]["components"]["securitySchemes"]["WxAuth"]
    authorizer = scheme["x-amazon-apigateway-authorizer"]
    check("the authorizer is the wxauth stack's, TOKEN, from the Authorization header, not cached",
          authorizer["type"] == "token" and authorizer["identitySource"] == "method.request.header.Authorization"
          and authorizer["authorizerResultTtlInSeconds"] == 0
          and imported(authorizer["authorizerUri"]) == "AuthorizerFunctionArn", json.dumps(authorizer, default=str))

    permissions = {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::Lambda::Permission"}
    granted = {p["FunctionName"]["Fn::ImportValue"]["Fn::Sub"].replace("${WxAuthStackName}-", ""): p for p in permissions.values()}
    check("API Gateway may invoke exactly the four functions",
          set(granted) == {"LoginFunctionArn", "DecryptPhoneFunctionArn", "CheckSessionFunctionArn", "AuthorizerFunctionArn"}, str(sorted(granted)))
    check("each permission is for this API only",
          all(p["Principal"] == "apigateway.amazonaws.com" and "${RestApi}/" in p["SourceArn"]["Fn::Sub"] for p in permissions.values()))

    acl = resources["WebAcl"]["Properties"]
    check("a regional web ACL that allows by default", acl["Scope"] == "REGIONAL" and acl["DefaultAction"] == {"Allow": {}})
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    check("three rules: login per IP, all per IP, AWS common", list(rules) == ["login-per-ip", "all-per-ip", "aws-common-rules"], str(list(rules)))
    body = json.loads(acl["CustomResponseBodies"]["rate_limited"]["Content"])
    check("the rate limit answers in the contract's error shape", body.get("error") == "rate_limited" and body.get("message"), str(body))
    for name in ("login-per-ip", "all-per-ip"):
        rule = rules[name]
        response = rule["Action"]["Block"]["CustomResponse"]
        statement = rule["Statement"]["RateBasedStatement"]
        check(f"{name}: per client IP, 429 with Retry-After",
              statement["AggregateKeyType"] == "IP" and response["ResponseCode"] == 429
              and response["CustomResponseBodyKey"] == "rate_limited"
              and any(h["Name"] == "Retry-After" for h in response["ResponseHeaders"]), json.dumps(rule, default=str))
    login = rules["login-per-ip"]["Statement"]["RateBasedStatement"]
    scope = login["ScopeDownStatement"]["AndStatement"]["Statements"]
    methods = [s["ByteMatchStatement"] for s in scope if "ByteMatchStatement" in s]
    paths_matched = [s["ByteMatchStatement"] for o in scope if "OrStatement" in o for s in o["OrStatement"]["Statements"]]
    check("the login rule counts only POST",
          [(m["PositionalConstraint"], m["SearchString"]) for m in methods] == [("EXACTLY", "POST")], json.dumps(scope))
    check("the login rule matches .../login and .../login/",
          {(m["PositionalConstraint"], m["SearchString"]) for m in paths_matched} == {("ENDS_WITH", "/login"), ("ENDS_WITH", "/login/")},
          json.dumps(scope))
    check("the login paths are URL-decoded, then lowercased, before matching",
          all(m["FieldToMatch"] == {"UriPath": {}}
              and sorted((t["Priority"], t["Type"]) for t in m["TextTransformations"]) == [(0, "URL_DECODE"), (1, "LOWERCASE")]
              for m in paths_matched) and len(paths_matched) == 2, json.dumps(paths_matched))
    params = template["Parameters"]
    check("login is stricter than the rest by default",
          params["LoginRateLimitPerIp"]["Default"] < params["RateLimitPerIp"]["Default"]
          and login["Limit"] == {"Ref": "LoginRateLimitPerIp"}
          and rules["all-per-ip"]["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "RateLimitPerIp"})
    common = rules["aws-common-rules"]["Statement"]["ManagedRuleGroupStatement"]
    overrides = {o["Name"]: o["ActionToUse"] for o in common.get("RuleActionOverrides", [])}
    check("AWS managed common rules, with 16 KiB bodies allowed (SizeRestrictions_BODY counted)",
          (common["VendorName"], common["Name"]) == ("AWS", "AWSManagedRulesCommonRuleSet")
          and overrides == {"SizeRestrictions_BODY": {"Count": {}}}, json.dumps(common, default=str))
    association = resources["WebAclAssociation"]["Properties"]
    check("the web ACL is attached to the API's stage",
          association["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
          and "/restapis/${RestApi}/stages/${Stage}" in association["ResourceArn"]["Fn::Sub"]
          and association["ResourceArn"]["Fn::Sub"].startswith("arn:${AWS::Partition}:"))

    return check.summary()


if __name__ == "__main__":
    sys.exit(main())
