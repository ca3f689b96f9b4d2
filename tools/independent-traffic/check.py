#!/usr/bin/env python3
"""Sanity checks on a generated directory: JSON, time order, TOML, token joins, legit invariants,
scope enforcement (no 2xx outside the token's granted scopes) and refresh chains (a refresh never grants
more than its device chain's original grant) outside labelled incidents."""
import json, sys, tomllib, collections

BASE = "https://ehr.stmartha.example/fhir/r4/"
V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def grants(scope):
    """scope string -> [(type, perms, required query pairs)] for patient/ user/ system/ scopes"""
    out = []
    for sc in (scope or "").split():
        if "/" not in sc or sc.split("/", 1)[0] not in ("patient", "user", "system"):
            continue
        body = sc.split("/", 1)[1]
        body, q = (body.split("?", 1) + [""])[:2]
        if "." not in body:
            continue
        typ, perm = body.rsplit(".", 1)
        perm = V1.get(perm, perm)
        if perm and set(perm) <= set("cruds"):
            out.append((typ, set(perm), [x for x in q.split("&") if x]))
    return out


def allowed(g, typ, perm, params=()):
    return any((t in ("*", typ)) and perm in p and all(x in params for x in q) for t, p, q in g)


def covered(scope, method, url):
    """True / False, or None for bulk status polls and file downloads (not decidable from the URL)"""
    g = grants(scope)
    url = url[len(BASE):] if url.startswith(BASE) else url
    path, _, query = url.partition("?")
    params = [x for x in query.split("&") if x]
    seg = path.split("/")
    if seg[0] in ("bulkstatus", "bulkfiles"):
        return None
    if seg[-1] == "$everything":          # served, filtered to what is allowed, if any read scope is held
        return any("r" in p for _, p, _ in g)
    if seg[-1] == "$export":
        need = (["Group"] if seg[0] == "Group" else []) + [t for x in params if x.startswith("_type=")
                                                            for t in x[6:].split(",")]
        return all(allowed(g, t, "r") for t in need)
    if method == "GET":
        return allowed(g, seg[0], "s", params) if len(seg) == 1 else allowed(g, seg[0], "r")
    return allowed(g, seg[0], {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}[method])


d = sys.argv[1]
reg = tomllib.load(open(d + "/registry.toml", "rb"))
apps = {a["client_id"]: a for a in reg["app"]}
for a in reg["app"]:
    assert set(a) == {"client_id", "name", "purpose", "allowed_scopes", "modes"}, a
labels = [json.loads(l) for l in open(d + "/labels.ndjson")]
lab_win = collections.defaultdict(list)
for l in labels:
    lab_win[l["client_id"]].append((l["start"], l["end"]))


def in_label(c, t):
    return any(s <= t <= e for s, e in lab_win[c])


for l in labels:
    assert l["category"] in ("scope_creep", "purpose_drift", "data_volume")
    assert l["client_id"] in apps and l["start"].endswith("Z") and l["end"] > l["start"]
prev = ""
n = 0
tokens = {}      # token -> (client, patient, scope, issue time, expires, revoked time)
revoked = {}
kinds = collections.Counter()
bad_join = unknown = 0
issues = collections.Counter()
info = collections.Counter()
lchains = {}     # device -> chain started inside a labelled window (after its last unlabelled one)
chains = {}      # device (client, user, ip, user agent) -> (issue time, granted scopes) of its refresh chain
shown = collections.Counter()
for line in open(d + "/events.ndjson"):
    e = json.loads(line)
    n += 1
    assert e["time"] >= prev, (prev, e["time"])
    prev = e["time"]
    assert e["client_id"] in apps, e
    kinds[(e["type"], e.get("event") or e.get("method"))] += 1
    if e["type"] == "token":
        assert e["event"] in ("issued", "refreshed", "revoked", "denied", "introspected")
        if e["event"] in ("issued", "refreshed"):
            assert e["token_id"] not in tokens, e
            tokens[e["token_id"]] = e
            dev = (e["client_id"], e.get("user"), e.get("source_ip"), e.get("user_agent"))
            g = set((e.get("scope_granted") or "").split())
            lab = in_label(e["client_id"], e["time"])
            if e["event"] == "issued" and "offline_access" in g:
                # a new authorization on the device starts its refresh chain. One issued inside a labelled
                # window may be incident material (the device's ordinary refreshes then continue its earlier
                # chain) or ordinary traffic that happens to fall in the window: both are kept as candidates.
                if lab:
                    lchains[dev] = (e["time"], g)
                else:
                    chains[dev] = (e["time"], g)
                    lchains.pop(dev, None)
            elif e["event"] == "refreshed" and not lab:
                cands = [c for c in (chains.get(dev), lchains.get(dev)) if c]
                if not cands:
                    issues["refresh_without_chain:" + e["client_id"]] += 1
                    what = "no earlier authorization on this device"
                elif all(g - c[1] for c in cands):
                    issues["refresh_exceeds_chain_grant:" + e["client_id"]] += 1
                    what = "chain issued %s, extra %s" % (cands[0][0], " ".join(sorted(g - cands[0][1])))
                else:
                    what = None
                if what and shown["chain"] < 20:
                    shown["chain"] += 1
                    print("  REFRESH", e["client_id"], e["time"], e["token_id"], e.get("user"), what)
        elif e["event"] == "revoked":
            revoked[e["token_id"]] = e["time"]
    else:
        assert e["method"] in ("GET", "POST", "PUT", "DELETE") and 100 <= e["status"] <= 599
        t = e.get("token_id")
        if t not in tokens:
            bad_join += 1
            continue
        te = tokens[t]
        cov = covered(te.get("scope_granted"), e["method"], e["url"])
        if cov is False:
            if 200 <= e["status"] < 300:
                if in_label(e["client_id"], e["time"]):
                    info["2xx_outside_scope_in_label:" + e["client_id"]] += 1
                else:
                    issues["2xx_outside_scope:" + e["client_id"]] += 1
                    if shown["scope"] < 20:
                        shown["scope"] += 1
                        print("  OUT-OF-SCOPE", e["client_id"], e["time"], t, e["method"], e["url"][:90], e["status"],
                              "| granted:", te.get("scope_granted"))
            elif e["status"] == 403:
                info["403_outside_scope:" + e["client_id"]] += 1
                if e.get("resources_returned"):
                    issues["403_with_resources:" + e["client_id"]] += 1
        elif e["status"] == 403:
            issues["403_within_scope:" + e["client_id"]] += 1
        if te["client_id"] != e["client_id"]:
            issues["token_client_mismatch"] += 1
        import datetime
        def ts(x): return datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
        if te.get("expires_in") and ts(e["time"]) > ts(te["time"]) + te["expires_in"]:
            issues["expired:" + e["client_id"]] += 1
        if t in revoked and e["time"] > revoked[t]:
            issues["used_after_revoke:" + e["client_id"]] += 1
        if te.get("patient") and "patient/" in te.get("scope_granted", "") and "user/" not in te.get("scope_granted", ""):
            if e.get("patient") and e["patient"] != te["patient"]:
                issues["other_patient:" + e["client_id"]] += 1
            if (e.get("patient_count") or 0) > 1:
                issues["population_under_patient:" + e["client_id"]] += 1
print(d, "events", n, "tokens", len(tokens), "labels", len(labels), "unjoined access", bad_join)
for k, v in sorted(kinds.items()):
    print("  ", k, v)
for k, v in sorted(info.items()):
    print("   info", k, v)
for k, v in sorted(issues.items()):
    print("  ISSUE", k, v)
bad = sum(v for k, v in issues.items() if k.split(":")[0] in ("2xx_outside_scope", "refresh_exceeds_chain_grant",
                                                             "refresh_without_chain", "403_with_resources",
                                                             "403_within_scope"))
print("  scope/refresh-chain check:", "OK" if bad == 0 else "FAILED (%d)" % bad)
