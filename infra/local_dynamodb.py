#!/usr/bin/env python3
"""Creates the session table and the login log table in DynamoDB Local (as
template.yaml defines them) and seeds the session that infra/events/*.json use,
so `sam local invoke` and `sam local start-api` work against it.

  python3 infra/local_dynamodb.py --endpoint http://localhost:8000 [--table wxauth-sessions] [--log-table wxauth-login-log]

Needs boto3 (pip install boto3). Any credentials and region do: run DynamoDB
Local with -sharedDb so every client sees the same tables.
"""
import argparse
import hashlib
import json
import time
from pathlib import Path

import boto3

FIXTURE = Path(__file__).resolve().parent / "events" / "fixture.json"


def exists(client, table):
    """DescribeTable, not ListTables: a listing comes in pages of 100 names, so a
    table past the first page would look absent (and CreateTable then fail)."""
    try:
        client.describe_table(TableName=table)
        return True
    except client.exceptions.ResourceNotFoundException:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="http://localhost:8000")
    parser.add_argument("--table", default="wxauth-sessions")
    parser.add_argument("--log-table", default="wxauth-login-log",
                        help="the login log table infra/env.json names (LOGIN_LOG_TABLE)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--ttl-seconds", type=int, default=24 * 3600,
                        help="lifetime of the seeded session (long, for manual runs)")
    args = parser.parse_args()

    client = boto3.client(
        "dynamodb", endpoint_url=args.endpoint, region_name=args.region,
        aws_access_key_id="local", aws_secret_access_key="local",
    )
    if not exists(client, args.table):
        client.create_table(
            TableName=args.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        client.get_waiter("table_exists").wait(TableName=args.table)
        print(f"created table {args.table}")

    if not exists(client, args.log_table):
        client.create_table(
            TableName=args.log_table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "userId", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "userId", "KeyType": "HASH"},
                {"AttributeName": "at", "KeyType": "RANGE"},
            ],
        )
        client.get_waiter("table_exists").wait(TableName=args.log_table)
        print(f"created table {args.log_table}")

    fixture = json.loads(FIXTURE.read_text())
    pk = hashlib.sha256(fixture["token"].encode()).hexdigest()
    now = int(time.time())
    client.put_item(
        TableName=args.table,
        Item={
            "pk": {"S": pk},
            "userId": {"S": fixture["userId"]},
            "openid": {"S": fixture["openid"]},
            "sessionKey": {"S": fixture["sessionKey"]},
            "createdAt": {"N": str(now)},
            "expiresAt": {"N": str(now + args.ttl_seconds)},
        },
    )
    item = client.get_item(TableName=args.table, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
    if not item:
        raise SystemExit("seeded session not readable")
    print(f"seeded the events' session in {args.table} (token in infra/events/fixture.json)")


if __name__ == "__main__":
    main()
