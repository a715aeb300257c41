#!/usr/bin/env python3
"""Checks berth's task definition JSON against botocore's ECS model.

Input: a JSON file holding a list of cases {"name", "describe", "register"}:
  * "describe" is a TaskDefinition object as berth returns it. Every member, at
    every depth, must be a member of the model's shape with the right JSON type and
    enum value (botocore's parser silently drops unknown members, so this walk is
    what catches a misspelled or invented field); then the DescribeTaskDefinition
    response {"taskDefinition": ..., "tags": [...]} must parse with botocore's own
    JSON protocol parser (timestamps become datetimes).
  * "register" is the stored (canonical) definition plus tags: it must pass botocore's
    client-side parameter validation for RegisterTaskDefinition, i.e. it is exactly
    what `aws ecs register-task-definition --cli-input-json` would send.

Exit status 0 when every case passes; otherwise the problems are printed.
Used by runtime/tests/taskdef_botocore.rs.
"""

import datetime
import json
import sys

import botocore.session
from botocore import parsers
from botocore.validate import ParamValidator


def walk(value, shape, path, errors):
    kind = shape.type_name
    where = path or "<root>"
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected an object for {shape.name}, got {type(value).__name__}")
            return
        for key, member in value.items():
            if key not in shape.members:
                errors.append(f"{where}: {key!r} is not a member of {shape.name}")
                continue
            walk(member, shape.members[key], f"{path}.{key}" if path else key, errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            walk(item, shape.member, f"{path}[{i}]", errors)
    elif kind == "map":
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            walk(item, shape.value, f"{path}[{key!r}]", errors)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            errors.append(f"{where}: {value!r} is not one of {shape.enum}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"{where}: expected an integer, got {value!r}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean, got {value!r}")
    elif kind in ("timestamp", "double", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append(f"{where}: expected a number, got {value!r}")
    else:
        errors.append(f"{where}: unexpected shape type {kind}")


def main(path):
    model = botocore.session.get_session().get_service_model("ecs")
    describe = model.operation_model("DescribeTaskDefinition")
    register = model.operation_model("RegisterTaskDefinition")
    parser = parsers.create_parser("json")
    failures = []
    cases = json.load(open(path))
    for case in cases:
        errors = []
        td = case["describe"]
        walk(td, model.shape_for("TaskDefinition"), "", errors)
        body = {"taskDefinition": td, "tags": case.get("tags", [])}
        parsed = parser.parse(
            {"status_code": 200, "headers": {"x-amzn-requestid": "berth-test"}, "body": json.dumps(body).encode()},
            describe.output_shape,
        )
        if "Error" in parsed:
            errors.append(f"botocore could not parse the describe response: {parsed['Error']}")
        else:
            out = parsed["taskDefinition"]
            if not isinstance(out.get("registeredAt"), datetime.datetime):
                errors.append(f"registeredAt parsed as {out.get('registeredAt')!r}, not a datetime")
            for key in ("taskDefinitionArn", "family", "revision", "status"):
                if out.get(key) != td.get(key):
                    errors.append(f"{key}: botocore read {out.get(key)!r}, berth wrote {td.get(key)!r}")
            if len(out.get("containerDefinitions", [])) != len(td.get("containerDefinitions", [])):
                errors.append("containerDefinitions lost entries in botocore's parse")
        report = ParamValidator().validate(case["register"], register.input_shape)
        if report.has_errors():
            errors.append("RegisterTaskDefinition input rejected by botocore:\n" + report.generate_report())
        if errors:
            failures.append((case["name"], errors))
        else:
            print(f"ok: {case['name']}")
    for name, errors in failures:
        print(f"FAIL: {name}")
        for e in errors:
            print(f"  {e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
