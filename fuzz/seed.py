#!/usr/bin/env python3
"""Seeds each fuzz target's corpus (fuzz/corpus/TARGET, not committed) from the project's own
inputs: the sample data, the FHIR/BALP/Keycloak fixtures (tests/fixtures/formats, with their
attribution in MANIFEST.tsv), the scope table and the TOML files. Run by fuzz/run.sh."""

import glob
import gzip
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sample_events(limit=2000):
    with gzip.open(os.path.join(ROOT, "sample-data", "events.ndjson.gz"), "rt") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            yield line.rstrip("\n")


def main():
    events = list(sample_events())
    for line in events:
        put("contract_line", line)
        e = json.loads(line)
        put("rfc3339", e["time"])
        if e["type"] == "token":
            put("scope", e.get("scope_granted", ""))
        else:
            put("url", e["url"])
            put("gateway", json.dumps({
                "time_iso8601": e["time"], "client_id": e["client_id"],
                "token_jti": e.get("token_id", ""), "request_method": e["method"],
                "request_uri": "/fhir/" + e["url"], "status": str(e["status"]),
                "body_bytes_sent": str(e.get("bytes", 0)), "remote_addr": "10.0.0.1",
                "purpose_of_use": e.get("purpose_of_use", "TREAT"),
            }))
    for t in ["2024-03-01T12:00:00Z", "2024-03-01T12:00:00.123456+05:30", "1970-01-01T00:00:00Z",
              "9999-12-31T23:59:59.999999Z", "2024-02-29t00:00:00-00:00"]:
        put("rfc3339", t)
    with open(os.path.join(ROOT, "tests", "data", "scopes.tsv")) as f:
        next(f)
        for row in f:
            put("scope", row.split("\t")[0])
    fixtures = os.path.join(ROOT, "tests", "fixtures", "formats")
    for path in glob.glob(os.path.join(fixtures, "*", "*.json")):
        with open(path) as f:
            text = f.read()
        put("auditevent", json.dumps(json.loads(text)))
        put("json_spans", text)
        put("json_spans", json.dumps({"resourceType": "Bundle", "entry": [{"resource": json.loads(text)}]}, indent=2))
    put("json_spans", '[ {"a": "x]}\\"", "b": [1, {"c": 2}]}, "s,t", 12.5e3, null, true, [], {} ]')
    for path in glob.glob(os.path.join(fixtures, "keycloak", "*")):
        with open(path) as f:
            for line in f:
                put("keycloak", line.rstrip("\n"))
    tomls = [os.path.join(ROOT, "sample-data", "registry.toml")]
    tomls += glob.glob(os.path.join(ROOT, "crates", "scopewatch-ingest", "src", "format", "mappings", "*.toml"))
    tomls += glob.glob(os.path.join(ROOT, "docs", "examples", "*.toml"))
    for path in tomls:
        with open(path) as f:
            put("toml_readers", f.read())
    put("toml_readers", "[enforcement_gap]\nenabled = false\n[patient_fanout]\nseverity = \"low\"\npatient_bound_limit = 5\n")
    put("toml_readers", "[[silence]]\nid = \"chg-1\"\nclient_id = \"chart\"\nrule = \"off_hours\"\ncause = \"\"\nuntil = \"2030-01-01T00:00:00Z\"\nreason = \"approved\"\n")
    print(f"seeded {CORPUS}", file=sys.stderr)


main()
