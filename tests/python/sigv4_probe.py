"""SigV4 on berth's TCP listener, request by request: a correctly signed request is
accepted; a wrong secret, an unknown key, a body changed after signing (with or
without a forged x-amz-content-sha256), a stale date, the wrong service and no
signature at all are refused with the exception the SDKs expect. Run inside the
daemon's fake host by tests/tests/api_auth.rs; credentials come from the environment."""

import datetime
import hashlib
import http.client
import json
import os

import botocore.auth
import botocore.awsrequest
import botocore.credentials

HOST = "127.0.0.1:5450"
TARGET = "AmazonEC2ContainerServiceV20141113.ListClusters"


def signed(body, key=None, secret=None, service="ecs", when=None):
    creds = botocore.credentials.Credentials(
        key or os.environ["AWS_ACCESS_KEY_ID"], secret or os.environ["AWS_SECRET_ACCESS_KEY"]
    )
    req = botocore.awsrequest.AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers={"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"},
    )
    original = botocore.auth.get_current_datetime
    if when is not None:
        botocore.auth.get_current_datetime = lambda: when
    try:
        botocore.auth.SigV4Auth(creds, service, "us-east-1").add_auth(req)
    finally:
        botocore.auth.get_current_datetime = original
    return dict(req.headers.items())


def send(headers, body):
    c = http.client.HTTPConnection(HOST, timeout=30)
    c.request("POST", "/", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        parsed = json.loads(data)
    except ValueError:
        parsed = data.decode(errors="replace")
    return r.status, parsed


def expect(name, headers, body, status, code=None):
    got_status, got = send(headers, body)
    ok = got_status == status and (code is None or got.get("__type") == code)
    print(f"{'ok ' if ok else 'BAD'} {name}: {got_status} {got}")
    return ok


def main():
    body = b"{}"
    results = []
    results.append(expect("signed with the generated key", signed(body), body, 200))
    results.append(
        expect("wrong secret", signed(body, secret="x" * 40), body, 403, "InvalidSignatureException")
    )
    results.append(
        expect("unknown access key", signed(body, key="AKIAUNKNOWNKEY000000"), body, 403, "UnrecognizedClientException")
    )
    tampered = b'{"maxResults": 1}'
    results.append(
        expect("body changed after signing", signed(body), tampered, 403, "InvalidSignatureException")
    )
    forged = signed(body)
    forged["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
    results.append(
        expect("body changed with a forged content hash", forged, tampered, 403, "InvalidSignatureException")
    )
    stale = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(minutes=20)
    results.append(
        expect("signed 20 minutes ago", signed(body, when=stale), body, 403, "InvalidSignatureException")
    )
    results.append(
        expect("signed for another service", signed(body, service="s3"), body, 403, "InvalidSignatureException")
    )
    bare = {"X-Amz-Target": TARGET, "Content-Type": "application/x-amz-json-1.1"}
    results.append(expect("unsigned", bare, body, 403, "MissingAuthenticationTokenException"))
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
