import json, sys, collections, datetime
d = sys.argv[1]
labels = [json.loads(l) for l in open(d + "/labels.ndjson")]
def ts(x): return datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
ev = [json.loads(l) for l in open(d + "/events.ndjson")]
t0 = ts("2025-02-03T05:00:00Z")
daily = collections.defaultdict(lambda: collections.Counter())
for e in ev:
    if e["type"] == "access":
        day = int((ts(e["time"]) - t0) // 86400)
        daily[e["client_id"]][day] += 1
for l in labels:
    s, en = ts(l["start"]), ts(l["end"])
    inwin = [e for e in ev if e["client_id"] == l["client_id"] and s <= ts(e["time"]) <= en]
    acc = [e for e in inwin if e["type"] == "access"]
    toks = [e for e in inwin if e["type"] == "token"]
    scopes = collections.Counter(e.get("scope_granted") for e in toks if e.get("scope_granted"))
    base = [daily[l["client_id"]][x] for x in range(14)]
    day = int((s - t0) // 86400)
    print(l["client_id"], l["rule"], "acc", len(acc), "tok", len(toks), "rr", sum(e.get("resources_returned") or 0 for e in acc),
          "| day", day, "req", daily[l["client_id"]][day], "baseline mean", round(sum(base) / 14))
    for sc, c in scopes.most_common(2):
        print("     ", c, sc[:150])
