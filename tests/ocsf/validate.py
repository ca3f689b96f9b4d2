#!/usr/bin/env python3
"""Validates OCSF alert records (one JSON object per line) against the official OCSF 1.8.0
schema for their class, as compiled to JSON Schema 2020-12 by the `ocsf-json-schema` package
(PyPI), with `jsonschema`. Prints every violation with its line and path; exits 1 on any.

Usage: validate.py ALERTS.ndjson [OCSF_VERSION]
"""
import json
import sys

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema


def main() -> int:
    path = sys.argv[1]
    version = sys.argv[2] if len(sys.argv) > 2 else "1.8.0"
    ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version=version))
    validators = {}
    records = violations = 0
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            records += 1
            uid = record.get("class_uid")
            if uid not in validators:
                name = ocsf.lookup_class_name_from_uid(class_uid=uid)
                profiles = record.get("metadata", {}).get("profiles", [])
                schema = ocsf.get_class_schema(class_name=name, profiles=profiles)
                validators[uid] = Draft202012Validator(schema)
            for error in validators[uid].iter_errors(record):
                where = "/".join(str(p) for p in error.absolute_path) or "(record)"
                print(f"{path}:{number}: {where}: {error.message}")
                violations += 1
    print(f"{records} record(s), {violations} violation(s) against OCSF {version}")
    return 1 if violations or not records else 0


if __name__ == "__main__":
    sys.exit(main())
