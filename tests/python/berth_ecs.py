"""Helpers for the boto3 end-to-end scripts: a client pointed at the daemon under
test, and a strict check of every response body against botocore's ECS model.

boto3 silently drops members its model does not know and accepts any JSON type, so a
misspelt field or a number sent as a string would go unnoticed by the SDK and break
only the user who reads it. Every successful answer is therefore compared with the
operation's output shape: unknown members (other than berth's documented ``berth*``
extensions), wrong types, values outside an enum and ``null`` members are reported.
"""

import json
import os
import sys

import boto3
import botocore.config


class Problems(list):
    def report(self):
        if self:
            print("response shape problems:", file=sys.stderr)
            for p in self:
                print("  " + p, file=sys.stderr)
            sys.exit(1)


def _check(shape, value, path, problems):
    t = shape.type_name
    if value is None:
        problems.append(f"{path}: null (omit the member instead)")
        return
    if t == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected an object ({shape.name}), got {value!r}")
            return
        for k, v in value.items():
            if k not in shape.members:
                if not k.startswith("berth"):
                    problems.append(f"{path}.{k}: not a member of {shape.name}")
                continue
            _check(shape.members[k], v, f"{path}.{k}", problems)
    elif t == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {value!r}")
            return
        for i, v in enumerate(value):
            _check(shape.member, v, f"{path}[{i}]", problems)
    elif t == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a map, got {value!r}")
            return
        for k, v in value.items():
            _check(shape.value, v, f"{path}[{k}]", problems)
    elif t == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    elif t in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected an integer, got {value!r}")
    elif t in ("double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected a number, got {value!r}")
    elif t == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected a boolean, got {value!r}")
    elif t == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected epoch seconds, got {value!r}")
    elif t == "blob":
        if not isinstance(value, str):
            problems.append(f"{path}: expected base64 text, got {value!r}")


def client(problems, **kwargs):
    """An ECS client for the daemon under test; every answer is shape-checked."""
    ecs = boto3.client(
        "ecs",
        endpoint_url=os.environ.get("BERTH_ENDPOINT", "http://127.0.0.1:5450"),
        config=botocore.config.Config(retries={"max_attempts": 1}),
        **kwargs,
    )
    calls = {"count": 0}

    def after_call(http_response, parsed, model, **_):
        calls["count"] += 1
        if http_response.status_code >= 300:
            body = json.loads(http_response.content or b"{}")
            if not isinstance(body.get("__type"), str) or not isinstance(body.get("message"), str):
                problems.append(f"{model.name}: error body without __type/message: {body!r}")
            if http_response.status_code >= 500:
                problems.append(f"{model.name}: server error {http_response.status_code}: {body!r}")
            return
        if "x-amzn-requestid" not in {k.lower() for k in http_response.headers}:
            problems.append(f"{model.name}: no x-amzn-RequestId header")
        try:
            body = json.loads(http_response.content or b"{}")
        except ValueError as e:
            problems.append(f"{model.name}: body is not JSON: {e}")
            return
        if model.output_shape is not None:
            _check(model.output_shape, body, model.name, problems)

    ecs.meta.events.register("after-call.ecs.*", after_call)
    ecs.berth_calls = calls
    return ecs


def expect_error(code, fn, *args, **kwargs):
    """Calls fn and returns the modeled exception it raised, which must be `code`."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the test inspects whatever was raised
        got = getattr(e, "response", {}).get("Error", {}).get("Code")
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, but the call succeeded")
