#!/usr/bin/env python3
"""Independent synthetic SMART-on-FHIR traffic generator (stdlib only).

python3 gen.py --seed N --out DIR
writes DIR/events.ndjson, DIR/registry.toml, DIR/labels.ndjson, DIR/app_days.txt

Timeline: 35 days starting 2025-02-03T00:00:00Z; days 0-13 (local) are clean.
Local time is UTC-5 (a US-Eastern hospital); day/night profiles use local hours.
"""
import argparse
import datetime as _dt
import json
import math
import os
import random

T0 = _dt.datetime(2025, 2, 3, tzinfo=_dt.timezone.utc)
DAYS = 35
LOCAL_OFFSET = 5 * 3600          # local midnight = 05:00Z
HOLIDAY = 14                     # Mon 2025-02-17 (Presidents' Day): no clinic traffic
FIRST_INCIDENT_DAY = 14
BASE = "https://ehr.stmartha.example/fhir/r4/"

OBS_LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
OBS_VS = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs"

SIZE = {"Patient": 2300, "Observation": 1150, "Condition": 1400, "MedicationRequest": 1650,
        "Medication": 900, "AllergyIntolerance": 1100, "Immunization": 1000, "Encounter": 1750,
        "Coverage": 1500, "ExplanationOfBenefit": 5200, "Claim": 4700, "DocumentReference": 3600,
        "DiagnosticReport": 2600, "ImagingStudy": 3100, "Appointment": 950, "Slot": 520,
        "Schedule": 700, "Practitioner": 1250, "PractitionerRole": 950, "Organization": 1000,
        "Location": 820, "CarePlan": 2100, "Procedure": 1350, "MedicationStatement": 1200,
        "Group": 650, "Provenance": 700, "QuestionnaireResponse": 2400, "Goal": 900}

# per-patient typical search result sizes
PER_PATIENT = {"Observation": 18, "Condition": 6, "MedicationRequest": 5, "AllergyIntolerance": 2,
               "Immunization": 8, "Encounter": 9, "Coverage": 1.3, "ExplanationOfBenefit": 11,
               "Claim": 9, "DocumentReference": 8, "DiagnosticReport": 6, "ImagingStudy": 2,
               "Procedure": 4, "CarePlan": 1.5, "Appointment": 3, "MedicationStatement": 3,
               "Goal": 2, "QuestionnaireResponse": 2}

# hour-of-day profiles (local time)
PROFILES = {
    "clinic": [.04, .03, .02, .02, .03, .08, .35, 1.0, 1.7, 1.9, 1.8, 1.5, 1.2, 1.5, 1.7, 1.5, 1.2, .8, .4, .25, .15, .1, .07, .05],
    "patient": [.3, .14, .08, .06, .06, .12, .4, .8, 1.0, .9, .8, .8, .9, .9, .8, .8, .9, 1.1, 1.35, 1.55, 1.6, 1.4, 1.0, .55],
    "ed": [.75, .65, .55, .5, .5, .55, .65, .85, 1.0, 1.2, 1.3, 1.3, 1.3, 1.3, 1.3, 1.3, 1.25, 1.2, 1.1, 1.05, 1.0, .95, .85, .8],
    "night": [1.0, 1.0, .9, .75, .5, .25, .04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, .02, .1, .35, .7, .95],
    "office": [0, 0, 0, 0, 0, 0, .1, .6, 1.5, 1.8, 1.7, 1.4, 1.0, 1.5, 1.7, 1.4, .9, .3, .05, 0, 0, 0, 0, 0],
}


def fmt(t):
    us = int(round(t * 1e6))
    return (T0 + _dt.timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def day_start(d):
    return d * 86400 + LOCAL_OFFSET


def weekday(d):
    return d % 7   # day 0 is a Monday


def poisson(rng, lam):
    if lam <= 0:
        return 0
    if lam < 40:
        L, k, p = math.exp(-lam), 0, 1.0
        while True:
            p *= rng.random()
            if p <= L:
                return k
            k += 1
    return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))


def count_around(rng, mean, sd=0.75):
    if mean <= 0:
        return 0
    v = rng.lognormvariate(math.log(mean) - sd * sd / 2, sd)
    n = int(v)
    if rng.random() < v - n:
        n += 1
    return n


def nbytes(rng, rtype, rr, bundle=True):
    if rr == 0:
        return rng.randint(180, 320) if bundle else 0
    per = SIZE.get(rtype, 1200)
    b = sum(int(per * rng.uniform(0.6, 1.5)) for _ in range(min(rr, 50)))
    if rr > 50:
        b = int(b * rr / 50)
    return b + (rng.randint(300, 700) if bundle else 0)


def hexid(rng, n=12):
    return "%0*x" % (n, rng.getrandbits(4 * n))


# ---------------------------------------------------------------------------------------------
# SMART scope enforcement (what a SMART App Launch 2.x server lets a token do)
# ---------------------------------------------------------------------------------------------
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE_CACHE = {}


def parse_scopes(granted):
    """granted scope string -> list of (resource type or '*', permission letters, required query pairs)."""
    key = granted or ""
    if key in _SCOPE_CACHE:
        return _SCOPE_CACHE[key]
    out = []
    for sc in key.split():
        ctx, sl, rest = sc.partition("/")
        if not sl or ctx not in ("patient", "user", "system"):
            continue
        rest, _, q = rest.partition("?")
        typ, dot, perm = rest.rpartition(".")
        if not dot or not typ:
            continue
        perm = _V1.get(perm, perm)
        if not perm or any(c not in "cruds" for c in perm):
            continue
        out.append((typ, set(perm), [x for x in q.split("&") if x]))
    _SCOPE_CACHE[key] = out
    return out


def type_allowed(granted, typ, perm, params=()):
    for (t, perms, q) in parse_scopes(granted):
        if (t == "*" or t == typ) and perm in perms and all(x in params for x in q):
            return True
    return False


def request_covered(granted, method, url):
    """True/False: is this request within the token's granted scopes; None: not decidable from the URL
    (bulk status polling / file downloads belong to an export job)."""
    if url.startswith(BASE):
        url = url[len(BASE):]
    path, _, query = url.partition("?")
    params = [x for x in query.split("&") if x]
    segs = path.split("/")
    if segs[0] in ("bulkstatus", "bulkfiles"):
        return None
    if segs[-1] == "$everything":
        # Patient/[id]/$everything: served (filtered to what is allowed) when any read scope is held
        return any("r" in perms for (_t, perms, _q) in parse_scopes(granted))
    if segs[-1] == "$export":
        need = []
        if segs[0] == "Group":
            need.append("Group")
        for x in params:
            if x.startswith("_type="):
                need += x[len("_type="):].split(",")
        return all(type_allowed(granted, t, "r") for t in need)
    typ = segs[0]
    if method == "GET":
        if len(segs) == 1:
            return type_allowed(granted, typ, "s", params)
        return type_allowed(granted, typ, "r")
    perm = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}[method]
    return type_allowed(granted, typ, perm)


# ---------------------------------------------------------------------------------------------
# Apps
# ---------------------------------------------------------------------------------------------

def S(*types):
    return list(types)


def make_apps():
    A = []

    def app(cid, name, purpose, scopes, modes, kind, **kw):
        a = dict(client_id=cid, name=name, purpose=purpose, scopes=scopes, modes=modes, kind=kind)
        a.update(kw)
        A.append(a)
        return a

    # ---- patient-facing standalone apps
    app("myhealth-portal", "MyHealth patient portal companion (standalone patient launch, two devices)", ["PATRQT"],
        "launch/patient openid fhirUser offline_access patient/Patient.r patient/Observation.rs patient/Condition.rs "
        "patient/MedicationRequest.rs patient/AllergyIntolerance.rs patient/Immunization.rs",
        ["patient"], "patient", rate=160, profile="patient", reqs=6, users=5000, offline=0.75, two_dev=0.35,
        proxy=0.08, optional=["patient/Immunization.rs", "patient/AllergyIntolerance.rs"],
        menu=[(3, ("S", "Observation", "category=" + OBS_VS + "&_sort=-date&_count=50")),
              (2, ("S", "Observation", "category=" + OBS_LAB + "&date=ge{since}")),
              (2, ("S", "Condition", "clinical-status=active")),
              (1, ("S", "Condition", "abatement-date:missing=true")),
              (2, ("S", "MedicationRequest", "status=active&_include=MedicationRequest:patient")),
              (1, ("S", "AllergyIntolerance", "clinical-status:not=resolved")),
              (1, ("S", "Immunization", "_sort=-date")),
              (2, ("P",))], ua="MyHealth/5.2 (iOS 18.2)", ua2="MyHealth/5.2 (Android 14)")
    app("vitals-tracker", "Home vitals tracker (SMART v1 scopes, refresh tokens)", ["PATRQT"],
        "launch/patient offline_access patient/Patient.read patient/Observation.read",
        ["patient"], "patient", rate=90, profile="patient", reqs=4, users=1800, offline=1.0, two_dev=0.2,
        menu=[(5, ("S", "Observation", "code=http://loinc.org|85354-9&_sort=-date&_count=20")),
              (3, ("S", "Observation", "code=http://loinc.org|29463-7&date=ge{since}")),
              (1, ("S", "Observation", "category=vital-signs&status:not=entered-in-error")),
              (1, ("P",))], ua="VitalsTracker/3.1 (Android 13)", ua2="VitalsTracker/3.1 (WearOS 4)")
    app("labs-pocket", "Lab results viewer (granular v2 category scope)", ["PATRQT"],
        "launch/patient openid fhirUser patient/Patient.r patient/Observation.rs?category=" + OBS_LAB,
        ["patient"], "patient", rate=70, profile="patient", reqs=4, users=2500, offline=0.0,
        menu=[(6, ("S", "Observation", "category=" + OBS_LAB + "&_sort=-date&_count=25")),
              (2, ("S", "Observation", "category=" + OBS_LAB + "&code=http://loinc.org|4548-4")),
              (1, ("S", "Observation", "category=" + OBS_LAB + "&date=ge{since}")),
              (1, ("P",))], ua="LabsPocket/1.9 (iOS 17.6)")
    app("med-reminder", "Medication reminder (per-type scopes, _include Medication)", ["PATRQT"],
        "launch/patient openid fhirUser offline_access patient/Patient.r patient/MedicationRequest.rs patient/Medication.rs "
        "patient/MedicationStatement.rs",
        ["patient"], "patient", rate=110, profile="patient", reqs=3, users=2200, offline=0.9, two_dev=0.15,
        menu=[(5, ("S", "MedicationRequest", "status=active&_include=MedicationRequest:medication")),
              (2, ("S", "MedicationStatement", "status:not=completed")),
              (1, ("S", "MedicationRequest", "intent=order&authoredon=ge{since}")),
              (1, ("P",))], ua="MedMinder/2.4 (Android 14)")
    app("immunize-me", "Immunization record card (sparse)", ["PATRQT"],
        "launch/patient openid patient/Patient.r patient/Immunization.rs",
        ["patient"], "patient", rate=9, profile="patient", reqs=2, users=900, offline=0.0,
        menu=[(4, ("S", "Immunization", "_sort=-date")), (1, ("P",))], ua="ImmunizeMe/1.0 (iOS 18.1)")
    app("payer-access", "Payer patient-access link (CARIN-style, patient-directed)", ["HPAYMT"],
        "launch/patient openid fhirUser offline_access patient/Patient.r patient/Coverage.rs patient/ExplanationOfBenefit.rs",
        ["patient"], "patient", rate=28, profile="patient", reqs=4, users=1200, offline=0.6,
        menu=[(3, ("S", "ExplanationOfBenefit", "_lastUpdated=ge{since}&_count=20")),
              (2, ("S", "Coverage", "status=active")), (1, ("P",))], ua="PayerLink/4.0")
    app("phr-sync", "Personal health record aggregator (v1 wildcard, $everything)", ["PATRQT"],
        "launch/patient openid fhirUser offline_access patient/*.read",
        ["patient"], "patient", rate=35, profile="patient", reqs=2, users=1500, offline=1.0, two_dev=0.25,
        menu=[(4, ("E",)), (1, ("S", "Encounter", "date=ge{since}")), (1, ("P",))],
        everything_types=S("Patient", "Observation", "Condition", "MedicationRequest", "Encounter", "Immunization",
                           "AllergyIntolerance", "Procedure", "DiagnosticReport"), ua="PHRSync/7.3")
    app("chart-summary", "Visit summary ($everything under per-type patient scopes)", ["PATRQT"],
        "launch/patient openid fhirUser patient/Patient.rs patient/Condition.rs patient/Observation.rs "
        "patient/MedicationRequest.rs patient/AllergyIntolerance.rs patient/Encounter.rs",
        ["patient"], "patient", rate=40, profile="patient", reqs=2, users=2000, offline=0.0,
        menu=[(5, ("E",)), (1, ("S", "Encounter", "status=finished&_sort=-date&_count=5")), (1, ("P",))],
        everything_types=S("Patient", "Condition", "Observation", "MedicationRequest", "AllergyIntolerance", "Encounter"),
        ua="VisitSummary/2.0")
    app("booking-self", "Self-scheduling (patient writes Appointments)", ["PATRQT"],
        "launch/patient openid fhirUser patient/Patient.r patient/Appointment.cru patient/Slot.rs patient/Schedule.rs",
        ["patient"], "patient", rate=45, profile="patient", reqs=4, users=3000, offline=0.0,
        menu=[(4, ("SLOT",)), (2, ("S", "Appointment", "date=ge{today}&status:not=cancelled")),
              (2, ("POSTAPPT",)), (1, ("PUTAPPT",)), (1, ("P",))], ua="BookIt/3.3")
    app("diabetes-diary", "Diabetes diary (writes glucose Observations, two devices)", ["PATRQT"],
        "launch/patient openid offline_access patient/Patient.r patient/Observation.crs patient/Condition.rs",
        ["patient"], "patient", rate=70, profile="patient", reqs=4, users=900, offline=1.0, two_dev=0.4,
        menu=[(4, ("POSTOBS",)), (3, ("S", "Observation", "code=http://loinc.org|2339-0&date=ge{since}")),
              (1, ("S", "Condition", "code=http://snomed.info/sct|44054006")), (1, ("P",))],
        ua="GlucoLog/6.0 (iOS 18.2)", ua2="GlucoLog/6.0 (watchOS 11)")
    app("sleep-coach", "Sleep coach (night-time single sessions)", ["PATRQT"],
        "launch/patient openid patient/Patient.r patient/Observation.rs",
        ["patient"], "patient", rate=14, profile="night", reqs=3, users=600, offline=0.0,
        menu=[(3, ("S", "Observation", "code=http://loinc.org|93832-4&_sort=-date&_count=14")),
              (1, ("S", "Observation", "category=" + OBS_VS + "&date=ge{since}"))], ua="SleepCoach/1.2")
    app("rpm-connect", "Remote patient monitoring rollout (steady growth)", ["PATRQT"],
        "launch/patient openid fhirUser offline_access patient/Patient.r patient/Observation.rs patient/CarePlan.rs patient/Goal.rs",
        ["patient"], "patient", rate=30, profile="patient", reqs=4, users=3000, offline=0.8, growth=0.025,
        menu=[(4, ("S", "Observation", "category=" + OBS_VS + "&date=ge{since}&_count=50")),
              (1, ("S", "CarePlan", "status=active")), (1, ("S", "Goal", "lifecycle-status=active")),
              (1, ("P",))], ua="RPMConnect/2.0")

    # ---- EHR launch with patient context
    app("med-rec", "Medication reconciliation (EHR launch, patient context)", ["TREAT"],
        "launch openid fhirUser patient/Patient.rs patient/MedicationRequest.rs patient/MedicationStatement.rs "
        "patient/AllergyIntolerance.rs patient/Medication.rs",
        ["patient"], "ehr_patient", rate=85, profile="clinic", reqs=6, clinicians=140,
        menu=[(3, ("S", "MedicationRequest", "status=active&_include=MedicationRequest:medication")),
              (2, ("S", "MedicationStatement", "status:not=entered-in-error")),
              (2, ("S", "AllergyIntolerance", "clinical-status=active")),
              (1, ("S", "MedicationRequest", "status=completed&authoredon=ge{since}")),
              (1, ("P",))], ua="MedRec/8.1 (EHR embedded)", intros=0.0)
    app("peds-growth", "Pediatric growth charts (EHR launch, v1 scopes)", ["TREAT"],
        "launch patient/Patient.read patient/Observation.read",
        ["patient"], "ehr_patient", rate=45, profile="office", reqs=4, clinicians=35, v1_to_v2=True,
        menu=[(3, ("S", "Observation", "code=http://loinc.org|8302-2&_count=100")),
              (3, ("S", "Observation", "code=http://loinc.org|29463-7&_count=100")),
              (1, ("S", "Observation", "code=http://loinc.org|9843-4")), (1, ("P",))], ua="GrowthCharts/3.0")
    app("er-triage", "Emergency triage assistant (EHR launch, 24/7)", ["TREAT"],
        "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/Condition.rs patient/Encounter.rs",
        ["patient"], "ehr_patient", rate=55, profile="ed", reqs=5, clinicians=60, weekend=0.95, holiday_on=True,
        menu=[(3, ("S", "Observation", "category=" + OBS_VS + "&_sort=-date&_count=10")),
              (2, ("S", "Condition", "clinical-status=active")),
              (2, ("S", "Encounter", "_sort=-date&_count=5")), (1, ("P",))], ua="TriageAssist/2.2")

    # ---- clinician user-level apps
    app("cardio-dash", "Cardiology dashboard (EHR launch, user scopes, many charts)", ["TREAT"],
        "launch openid fhirUser user/Patient.rs user/Observation.rs user/Condition.rs user/MedicationRequest.rs",
        ["user"], "clinician", rate=50, profile="clinic", charts=4, reqs=4, clinicians=45, launch_patient=True,
        menu=[(3, ("S", "Observation", "code=http://loinc.org|8867-4&_sort=-date&_count=30")),
              (2, ("S", "Observation", "category=" + OBS_LAB + "&code=http://loinc.org|2093-3")),
              (2, ("S", "Condition", "category=problem-list-item&clinical-status=active")),
              (2, ("S", "MedicationRequest", "status=active")), (1, ("P",))], ua="CardioDash/4.4", intros=1.0)
    app("rounds-board", "Nursing rounds board (EHR launch, unit census)", ["TREAT"],
        "launch openid fhirUser user/Patient.rs user/Encounter.rs user/Observation.rs user/Location.rs user/DocumentReference.rs",
        ["user"], "clinician", rate=36, profile="ed", charts=6, reqs=2, clinicians=120, weekend=0.9, holiday_on=True,
        census=True,
        menu=[(3, ("S", "Observation", "category=" + OBS_VS + "&_sort=-date&_count=5")),
              (1, ("S", "Encounter", "status=in-progress")), (1, ("P",))], ua="RoundsBoard/1.7", intros=1.0)
    app("oncology-notes", "Oncology notes reader (user scopes, DocumentReference)", ["TREAT"],
        "launch openid fhirUser user/Patient.rs user/DocumentReference.rs user/DiagnosticReport.rs user/Condition.rs",
        ["user"], "clinician", rate=30, profile="office", charts=3, reqs=3, clinicians=25,
        menu=[(3, ("S", "DocumentReference", "category=clinical-note&_sort=-date&_count=10")),
              (2, ("S", "DiagnosticReport", "category=LAB&_sort=-date")),
              (1, ("S", "Condition", "category=encounter-diagnosis")), (1, ("P",))], ua="OncNotes/1.3")
    app("radiology-viewer", "Radiology viewer (user scopes)", ["TREAT"],
        "launch openid fhirUser user/Patient.rs user/ImagingStudy.rs user/DiagnosticReport.rs",
        ["user"], "clinician", rate=40, profile="office", charts=3, reqs=2, clinicians=20,
        menu=[(3, ("S", "ImagingStudy", "_sort=-started")), (2, ("S", "DiagnosticReport", "category=RAD")),
              (1, ("P",))], ua="RadView/9.0")
    app("nurse-handoff", "Shift handoff (user wildcard read, registered)", ["TREAT"],
        "launch openid fhirUser user/*.rs",
        ["user"], "clinician", rate=32, profile="ed", charts=5, reqs=3, clinicians=90, weekend=0.9, holiday_on=True,
        menu=[(3, ("S", "Observation", "category=" + OBS_VS + "&_sort=-date&_count=10")),
              (2, ("S", "CarePlan", "status=active")), (2, ("S", "Encounter", "status=in-progress")),
              (1, ("S", "MedicationRequest", "status=active")), (1, ("P",))], ua="Handoff/2.9")
    app("pop-health", "Population health registry (user-level searches)", ["HOPERAT"],
        "openid fhirUser user/Patient.rs user/Condition.rs user/Observation.rs user/Encounter.rs",
        ["user"], "population", rate=14, profile="office", reqs=14, clinicians=10, ua="PopHealth/2024.4")

    # ---- backend services
    app("warehouse-nightly", "Nightly Group export to the warehouse (per-type system scopes)", ["HOPERAT"],
        "system/Group.rs system/Patient.rs system/Observation.rs system/Condition.rs system/Encounter.rs system/MedicationRequest.rs",
        ["system"], "bulk", hour=1.5, export="group", types=S("Patient", "Observation", "Condition", "Encounter", "MedicationRequest"),
        inc_size=9000, full_dow=5, full_size=120000, group="g-all-active", post=False, delete=True, abs_urls=False,
        ua="wh-loader/3.2")
    app("quality-measures", "Quality measure engine (system wildcard, system-level export)", ["HOPERAT"],
        "system/*.rs",
        ["system"], "bulk", hour=3.0, export="system",
        types=S("Patient", "Encounter", "Condition", "Procedure", "Observation", "MedicationRequest", "Immunization"),
        inc_size=7000, full_dow=6, full_size=90000, post=True, delete=False, abs_urls=True, ua="eCQM-engine/5.1")
    app("registry-reporter", "Immunization registry reporting (public health)", ["PUBHLTH"],
        "system/Group.rs system/Patient.rs system/Immunization.rs",
        ["system"], "bulk", hour=4.0, export="group", types=S("Patient", "Immunization"), inc_size=600, full_dow=None,
        group="g-immz-reportable", post=True, delete=True, abs_urls=True, ua="immz-feed/1.4")
    app("research-cohort", "Research cohort export (weekly Patient/$export)", ["HRESCH"],
        "system/Patient.rs system/Condition.rs system/Observation.rs",
        ["system"], "bulk", hour=2.25, export="patient", types=S("Patient", "Condition", "Observation"), inc_size=0,
        weekly_dow=2, full_size=40000, post=False, delete=False, abs_urls=False, ua="cohort-pull/0.9")
    app("claims-bridge", "Claims bridge (payer, backend searches + nightly export)", ["HPAYMT"],
        "system/Group.rs system/Patient.rs system/Claim.rs system/ExplanationOfBenefit.rs system/Coverage.rs",
        ["system"], "backend_api", interval=3600, active=(7, 19), calls=8, api="claims",
        nightly_export=dict(hour=0.75, types=S("Claim", "ExplanationOfBenefit", "Coverage"), size=2500, group="g-payer-attrib"),
        ua="claims-bridge/2.0", intros=1.0)
    app("sched-integration", "Scheduling integration (backend, writes Appointments)", ["HOPERAT"],
        "system/Appointment.cruds system/Slot.rs system/Schedule.rs system/Practitioner.rs",
        ["system"], "backend_api", interval=1200, active=(6, 20), night_interval=3600, calls=7, api="sched",
        ua="sched-int/4.7", intros=1.0)
    app("directory-sync", "Provider directory sync (sparse)", ["HOPERAT"],
        "system/Practitioner.rs system/PractitionerRole.rs system/Organization.rs system/Location.rs",
        ["system"], "backend_api", interval=4 * 3600, active=(0, 24), calls=4, api="directory", ua="dir-sync/1.1")
    return A


# ---------------------------------------------------------------------------------------------
# Generator
# ---------------------------------------------------------------------------------------------

class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seed = seed
        self.events = []
        self.seq = 0
        self.labels = []
        self.apps = make_apps()
        self.by_id = {a["client_id"]: a for a in self.apps}
        self.tokens_seen = set()
        self.pt_universe = ["%s%07d" % (self.rng.choice("abcdefghjk"), self.rng.randrange(10 ** 7)) for _ in range(30000)]
        self.census = self.pt_universe[:2500]
        self.appt_seq = 10000
        self.job_seq = 0
        self.tok_stats = {}
        self.tok_adapt = {}           # token -> app adapts to the granted scopes (skips) vs. calls anyway (403)
        self.post_phase = False       # True while incident closures run (after all legit traffic)
        r = self.rng
        for a in self.apps:
            a["mods"] = []            # (start, end, dict)
            a["rate_mult"] = {}       # day -> multiplier
            a["skip_days"] = set()
            if a["kind"] == "patient":
                a["pop"] = []
                for i in range(a["users"]):
                    pid = r.choice(self.pt_universe)
                    u = dict(user="Patient/" + pid, pids=[pid], w=r.paretovariate(1.6),
                             devices=[])
                    if r.random() < a.get("proxy", 0):
                        u["user"] = "RelatedPerson/rp-%s" % hexid(r, 6)
                        u["pids"] = [pid] + [r.choice(self.pt_universe) for _ in range(r.randint(1, 2))]
                    ndev = 2 if r.random() < a.get("two_dev", 0) else 1
                    for k in range(ndev):
                        u["devices"].append(dict(ip=self.pub_ip(), ua=a["ua"] if k == 0 else a.get("ua2", a["ua"]),
                                                 alive=False, scope=None, chain_pid=None, chains=[],
                                                 offline=r.random() < a.get("offline", 0)))
                    a["pop"].append(u)
                a["cum"] = self.cum([u["w"] for u in a["pop"]])
            elif a["kind"] in ("ehr_patient", "clinician", "population"):
                a["docs"] = [dict(user="Practitioner/%s-%d" % (a["client_id"][:3], i), ip="10.%d.%d.%d" % (
                    r.randint(20, 40), r.randint(0, 255), r.randint(2, 250)), w=r.paretovariate(2.0))
                    for i in range(a["clinicians"])]
                a["cum"] = self.cum([d["w"] for d in a["docs"]])
            else:
                a["ip"] = "10.50.%d.%d" % (r.randint(1, 9), r.randint(2, 250))

    # ----- helpers
    def pub_ip(self):
        r = self.rng
        return "%d.%d.%d.%d" % (r.choice([24, 67, 73, 98, 104, 172, 174, 208]), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254))

    @staticmethod
    def cum(ws):
        out, s = [], 0.0
        for w in ws:
            s += w
            out.append(s)
        return out

    def pick(self, seq, cum):
        return self.rng.choices(seq, cum_weights=cum, k=1)[0]

    def new_token(self):
        while True:
            t = "at-" + hexid(self.rng, 16)
            if t not in self.tokens_seen:
                self.tokens_seen.add(t)
                return t

    def emit(self, t, d):
        d = dict(d)
        out = {"type": d.pop("type"), "time": fmt(t), "client_id": d.pop("client_id")}
        for k, v in d.items():
            if v is not None:
                out[k] = v
        self.seq += 1
        self.events.append((int(round(t * 1e6)), self.seq, out))

    def token_ev(self, t, a, event, token_id=None, grant=None, req=None, granted=None, patient=None,
                 expires=None, user=None, ip=None, ua=None):
        self.emit(t, dict(type="token", client_id=a["client_id"], user=user, event=event, token_id=token_id,
                          grant_type=grant, scope_requested=req, scope_granted=granted, patient=patient,
                          expires_in=expires, source_ip=ip, user_agent=ua))

    def access(self, t, a, method, url, status, tok, rr=None, b=None, patient=None, pc=None, pou=None,
               user=None, ip=None, ua=None):
        self.emit(t, dict(type="access", client_id=a["client_id"], user=user, method=method, url=url, status=status,
                          token_id=tok, resources_returned=rr, bytes=b, patient=patient, patient_count=pc,
                          purpose_of_use=pou, source_ip=ip, user_agent=ua))
        if tok is not None and rr:
            self.tok_stats[tok] = self.tok_stats.get(tok, 0) + rr

    def time_in_day(self, d, profile, lo=None, hi=None):
        w = PROFILES[profile]
        hours = list(range(24))
        if lo is not None:
            w = [w[h] if lo <= h < hi else 0 for h in hours]
        h = self.rng.choices(hours, weights=w, k=1)[0]
        return day_start(d) + h * 3600 + self.rng.random() * 3600

    def active_mods(self, a, t):
        m = {}
        for (s, e, mod) in a["mods"]:
            if s <= t < e:
                m.update(mod)
        return m

    def gap(self):
        return min(240.0, self.rng.lognormvariate(math.log(9), 0.85))

    # ----- request builders
    def op_requests(self, a, op, pid, t, granted=None):
        """returns list of (method, url, status, rr, bytes, patient, pc, rtype)
        granted: the token's granted scopes, when known; the server then leaves out _include targets and
        $everything types the token may not read."""
        r = self.rng
        kind = op[0]
        since = fmt(t - r.choice([30, 90, 180, 365]) * 86400)[:10]
        today = fmt(t)[:10]
        out = []
        if kind == "P":
            st = 200 if r.random() > 0.004 else 404
            out.append(("GET", "Patient/" + pid, st, 1 if st == 200 else 0, nbytes(r, "Patient", 1, False) if st == 200 else 310, pid, 1, "Patient"))
        elif kind == "S":
            typ, params = op[1], op[2].replace("{since}", since).replace("{today}", today)
            mean = PER_PATIENT.get(typ, 4)
            if "_count=" in params:
                cap = int(params.split("_count=")[1].split("&")[0])
            else:
                cap = 50
            total = count_around(r, mean, 0.9)
            if "date=ge" in params or "authoredon=ge" in params or "_lastUpdated" in params:
                total = count_around(r, mean * 0.35, 0.9)
            pref = "patient=" + pid + "&"
            if typ == "Coverage":
                pref = "beneficiary=Patient/" + pid + "&"
            url = typ + "?" + pref + params
            rr = min(cap, total)
            inc = 0
            if "_include=MedicationRequest:medication" in params:
                inc = max(0, int(rr * r.uniform(0.4, 0.9)))
            elif "_include=MedicationRequest:patient" in params and rr:
                inc = 1
            if inc and granted is not None:
                tgt = "Medication" if "_include=MedicationRequest:medication" in params else "Patient"
                if not (type_allowed(granted, tgt, "r") or type_allowed(granted, tgt, "s")):
                    inc = 0
            st = 200 if r.random() > 0.003 else r.choice([429, 500, 503])
            if st != 200:
                out.append(("GET", url, st, 0, 240, pid, 0, typ))
                return out
            out.append(("GET", url, 200, rr + inc, nbytes(r, typ, rr) + inc * 900, pid, 1, typ))
            left, page = total - rr, 1
            while left > 0 and page < 6:
                page += 1
                n = min(cap, left)
                out.append(("GET", url + "&_page_token=" + hexid(r, 10), 200, n, nbytes(r, typ, n), pid, 1, typ))
                left -= n
        elif kind == "E":
            types = a.get("everything_types", ["Patient", "Observation"])
            if granted is not None:
                types = [x for x in types if type_allowed(granted, x, "r") or type_allowed(granted, x, "s")]
            rr = 1 + sum(count_around(r, PER_PATIENT.get(x, 2) * 1.6, 0.8) for x in types if x != "Patient")
            page = min(rr, 100)
            url = "Patient/%s/$everything" % pid
            if r.random() < 0.3:
                url += "?_since=" + since + "T00:00:00Z"
                rr = max(1, rr // 4)
                page = min(rr, 100)
            out.append(("GET", url, 200, page, nbytes(r, "Observation", page), pid, 1, "Patient"))
            left = rr - page
            while left > 0:
                n = min(100, left)
                out.append(("GET", "Patient/%s/$everything?_count=100&_page_token=%s" % (pid, hexid(r, 10)), 200, n,
                            nbytes(r, "Observation", n), pid, 1, "Patient"))
                left -= n
        elif kind == "SLOT":
            n = r.randint(0, 30)
            out.append(("GET", "Slot?schedule=Schedule/sch-%d&status=free&start=ge%s" % (r.randint(1, 80), today), 200, n,
                        nbytes(r, "Slot", n), None, None, "Slot"))
        elif kind == "POSTAPPT":
            self.appt_seq += 1
            st = 201 if r.random() > 0.03 else 409
            out.append(("POST", "Appointment", st, 1 if st == 201 else 0, 980 if st == 201 else 420, pid, 1, "Appointment"))
        elif kind == "PUTAPPT":
            out.append(("PUT", "Appointment/ap-%d" % r.randint(1000, self.appt_seq), 200, 1, 990, pid, 1, "Appointment"))
        elif kind == "POSTOBS":
            out.append(("POST", "Observation", 201, 1, r.randint(900, 1300), pid, 1, "Observation"))
        return out

    def enforce(self, tok, granted, reqs):
        """Server-side scope enforcement for ordinary sessions: the requests actually sent for one op.
        A request outside the token's granted scopes is mostly skipped (the app adapts to what consent /
        the refresh granted); some tokens call anyway and get 403 (no paging follows)."""
        if not reqs or request_covered(granted, reqs[0][0], reqs[0][1]) is not False:
            return reqs
        adapt = self.tok_adapt.get(tok)
        if adapt is None:
            adapt = self.tok_adapt[tok] = self.rng.random() < 0.85
        if adapt:
            return []
        m, url, _st, _rr, _b, p, _pc, typ = reqs[0]
        return [(m, url, 403, 0, self.rng.randint(330, 520), p, 0, typ)]

    @staticmethod
    def chain_at(dev, t):
        """the device's refresh chain live at time t (latest authorization before t, not revoked by t)"""
        best = None
        for ch in dev.get("chains", []):
            if ch["t0"] < t:
                best = ch
        if best is not None and (best["end"] is None or best["end"] > t):
            return best
        return None

    def weighted_op(self, a):
        ws = [w for w, _ in a["menu"]]
        return self.rng.choices([o for _, o in a["menu"]], weights=ws, k=1)[0]

    # ---- scopes
    def session_scopes(self, a, device=None, mods=None):
        r = self.rng
        sc = a["scopes"].split()
        if device is not None and not device["offline"]:
            sc = [s for s in sc if s != "offline_access"]
        opt = a.get("optional", [])
        req = [s for s in sc if not (s in opt and r.random() < 0.25)]
        granted = list(req)
        if a.get("v1_to_v2"):
            granted = [s.replace(".read", ".rs").replace(".write", ".cud") for s in granted]
            granted = [s.replace("patient/Patient.rs", "patient/Patient.rs") for s in granted]
        # consent screen: patient unticks an optional type now and then (granted subset)
        if opt and r.random() < 0.06:
            drop = [s for s in granted if s in opt]
            if drop:
                granted.remove(r.choice(drop))
        req, granted = " ".join(req), " ".join(granted)
        if mods and "scope_fn" in mods:
            req, granted = mods["scope_fn"](req, granted)
        return req, granted

    # ---------------------------------------------------------------------------------------
    # legit sessions
    # ---------------------------------------------------------------------------------------
    def patient_session(self, a, t, mods=None, user=None, force_pid=None):
        r = self.rng
        mods = mods if mods is not None else self.active_mods(a, t)
        u = user or self.pick(a["pop"], a["cum"])
        dev = r.choice(u["devices"])
        pid = force_pid or (r.choice(u["pids"]) if len(u["pids"]) > 1 else u["pids"][0])
        tok = self.new_token()
        exp = 3600
        purpose = mods.get("pou", a["purpose"][0])
        if mods.get("offline"):
            dev = dict(dev, offline=True)
        fresh = "scope_fn" in mods
        # refresh-chain state of the device at time t. Legit traffic is generated in time order, so the
        # device's running state is current; incident closures run afterwards and look the chain up by time
        # (they never start or end a chain, so the legit chains stay consistent).
        if self.post_phase:
            ch = self.chain_at(dev, t)
            alive, chain_scope, chain_pid = ch is not None, ch["scope"] if ch else None, ch["pid"] if ch else None
            if ch is None and not fresh:
                dev = dict(dev, offline=False)     # one-off session, no new refresh chain
        else:
            ch = dev["chains"][-1] if dev.get("chains") and dev["alive"] else None
            alive, chain_scope, chain_pid = dev["alive"], dev["scope"], dev["chain_pid"]
        chain = None       # the chain this session's token belongs to
        if dev["offline"] and alive and chain_pid == pid and not fresh and r.random() < 0.93:
            granted = chain_scope
            chain = ch
            if r.random() < 0.05 and len(granted.split()) > 3:
                # refresh asking for a narrower scope (allowed)
                parts = granted.split()
                cands = [s for s in parts if s.startswith("patient/") and s != "patient/Patient.r"]
                if cands:
                    parts.remove(r.choice(cands))
                granted = " ".join(parts)
                self.token_ev(t, a, "refreshed", tok, "refresh_token", granted, granted, pid, exp, u["user"], dev["ip"], dev["ua"])
            else:
                if "refresh_fn" in mods:
                    granted = mods["refresh_fn"](granted)
                self.token_ev(t, a, "refreshed", tok, "refresh_token", None, granted, pid, exp, u["user"], dev["ip"], dev["ua"])
        else:
            if not self.post_phase and dev["offline"] and dev["alive"] is False and dev["scope"] is not None and r.random() < 0.5:
                # device still holds a revoked/expired refresh token: denied first
                self.token_ev(t - r.uniform(1, 4), a, "denied", None, "refresh_token", None, None, None, None, u["user"], dev["ip"], dev["ua"])
            req, granted = self.session_scopes(a, dev, mods)
            if r.random() < 0.012:
                # user declines consent
                self.token_ev(t, a, "denied", None, "authorization_code", req, None, None, None, u["user"], dev["ip"], dev["ua"])
                return
            self.token_ev(t, a, "issued", tok, "authorization_code", req, granted, pid, exp, u["user"], dev["ip"], dev["ua"])
            if dev["offline"] and "offline_access" in granted.split() and not fresh and not self.post_phase:
                dev["alive"], dev["scope"], dev["chain_pid"] = True, granted, pid
                chain = dict(t0=t, scope=granted, pid=pid, end=None)
                dev["chains"].append(chain)
        n = max(1, count_around(r, a["reqs"] * mods.get("req_mult", 1.0), 0.7))
        ct = t + r.uniform(0.3, 3)
        extra = list(mods.get("extra_ops", []))
        ops = [self.weighted_op(a) for _ in range(n)]
        for e in extra:
            if r.random() < 0.7:
                ops.insert(r.randrange(len(ops) + 1), e)
        for op in ops:
            reqs = self.enforce(tok, granted, self.op_requests(a, op, pid, ct, granted))
            if not reqs:
                continue
            for (m, url, st, rr, b, p, pc, _typ) in reqs:
                self.access(ct, a, m, url, st, tok, rr, b, p, pc, purpose, u["user"], dev["ip"], dev["ua"])
                ct += r.uniform(0.2, 2.5)
            ct += self.gap()
        if chain is not None and not self.post_phase and dev["alive"] and r.random() < 0.02:
            # user disconnects the app on this device: token and refresh chain revoked, never used again
            tr = ct + r.uniform(5, 120)
            self.token_ev(tr, a, "revoked", tok, None, None, None, None, None, u["user"], dev["ip"], dev["ua"])
            dev["alive"] = False
            chain["end"] = tr
        elif r.random() < 0.01:
            self.token_ev(ct + r.uniform(5, 60), a, "revoked", tok, None, None, None, None, None, u["user"], dev["ip"], dev["ua"])
        return tok, ct, u, dev, pid

    def ehr_patient_session(self, a, t, mods=None, pid=None, doc=None):
        r = self.rng
        mods = mods if mods is not None else self.active_mods(a, t)
        doc = doc or self.pick(a["docs"], a["cum"])
        pid = pid or r.choice(self.census if r.random() < 0.6 else self.pt_universe)
        tok = self.new_token()
        req, granted = self.session_scopes(a, None, mods)
        purpose = mods.get("pou", a["purpose"][0])
        if r.random() < 0.004:
            self.token_ev(t, a, "denied", None, "authorization_code", req, None, None, None, doc["user"], doc["ip"], a["ua"])
            return
        self.token_ev(t, a, "issued", tok, "authorization_code", req, granted, pid, 3600, doc["user"], doc["ip"], a["ua"])
        n = max(1, count_around(r, a["reqs"] * mods.get("req_mult", 1.0), 0.6))
        ct = t + r.uniform(0.5, 3)
        ops = [self.weighted_op(a) for _ in range(n)]
        for e in mods.get("extra_ops", []):
            if r.random() < 0.7:
                ops.insert(r.randrange(len(ops) + 1), e)
        for op in ops:
            reqs = self.enforce(tok, granted, self.op_requests(a, op, pid, ct, granted))
            if not reqs:
                continue
            for (m, url, st, rr, b, p, pc, _typ) in reqs:
                self.access(ct, a, m, url, st, tok, rr, b, p, pc, purpose, doc["user"], doc["ip"], a["ua"])
                ct += r.uniform(0.2, 2.0)
            ct += self.gap()
        return tok, ct, doc, pid

    def sure(self, fn, a, t, **kw):
        for _ in range(50):
            res = fn(a, t, **kw)
            if res:
                return res
            t += 90
        raise RuntimeError("no session")

    def clinician_session(self, a, t, mods=None, doc=None):
        r = self.rng
        mods = mods if mods is not None else self.active_mods(a, t)
        doc = doc or self.pick(a["docs"], a["cum"])
        tok = self.new_token()
        req, granted = self.session_scopes(a, None, mods)
        purpose = mods.get("pou", a["purpose"][0])
        launch_pid = r.choice(self.census) if a.get("launch_patient") else None
        self.token_ev(t, a, "issued", tok, "authorization_code", req, granted, launch_pid, 3600, doc["user"], doc["ip"], a["ua"])
        ct = t + r.uniform(0.5, 3)
        if a.get("intros", 0) and r.random() < a["intros"]:
            self.token_ev(ct - 0.2, a, "introspected", tok, None, None, None, None, None, None, "10.50.0.5", "fhir-gateway/2.3")
        k = max(1, count_around(r, a["charts"] * mods.get("req_mult", 1.0), 0.6))
        if a.get("census"):
            unit = r.randint(1, 24)
            n_pat = r.randint(12, 30)
            self.access(ct, a, "GET", "Encounter?location=Location/unit-%d&status=in-progress&_include=Encounter:patient" % unit,
                        200, tok, n_pat * 2, nbytes(r, "Encounter", n_pat * 2), None, n_pat, purpose, doc["user"], doc["ip"], a["ua"])
            ct += r.uniform(2, 10)
        patients = [launch_pid] if launch_pid else []
        while len(patients) < k:
            patients.append(r.choice(self.census))
        extra = mods.get("extra_ops", [])
        t_end = t + 3300
        for pid in patients:
            n = max(1, count_around(r, a["reqs"], 0.6))
            ops = [self.weighted_op(a) for _ in range(n)]
            for e in extra:
                if r.random() < 0.5:
                    ops.append(e)
            for op in ops:
                reqs = self.enforce(tok, granted, self.op_requests(a, op, pid, ct, granted))
                if not reqs:
                    continue
                for (m, url, st, rr, b, p, pc, _typ) in reqs:
                    if ct > t_end:
                        break
                    self.access(ct, a, m, url, st, tok, rr, b, p, pc, purpose, doc["user"], doc["ip"], a["ua"])
                    ct += r.uniform(0.2, 1.5)
                ct += self.gap() * 0.6
            ct += r.uniform(20, 300)
            if ct > t_end:
                break
        return tok, ct, doc

    POP_QUERIES = [
        ("Condition", "code=http://snomed.info/sct|44054006&clinical-status=active"),
        ("Condition", "code=http://snomed.info/sct|38341003&clinical-status=active"),
        ("Observation", "code=http://loinc.org|4548-4&value-quantity=gt9&date=ge{since}"),
        ("Observation", "code=http://loinc.org|2093-3&date=ge{since}"),
        ("Patient", "_has:Condition:patient:code=http://snomed.info/sct|13645005"),
        ("Encounter", "class=IMP&date=ge{since}&_include=Encounter:patient"),
    ]

    def population_search(self, a, t, tok, purpose, user, ip, ua, pages_mean=4, count=100):
        r = self.rng
        typ, q = r.choice(self.POP_QUERIES)
        q = q.replace("{since}", fmt(t - 90 * 86400)[:10])
        url = "%s?%s&_count=%d" % (typ, q, count)
        pages = max(1, count_around(r, pages_mean, 0.7))
        ct = t
        for i in range(pages):
            n = count if i < pages - 1 else r.randint(1, count)
            pcnt = n if typ == "Patient" else max(1, int(n * r.uniform(0.3, 0.8)))
            u = url if i == 0 else url + "&_page_token=" + hexid(r, 10)
            self.access(ct, a, "GET", u, 200, tok, n, nbytes(r, typ, n), None, pcnt, purpose, user, ip, ua)
            ct += r.uniform(0.4, 3.0)
        return ct

    def population_session(self, a, t, mods=None):
        r = self.rng
        mods = mods if mods is not None else self.active_mods(a, t)
        doc = self.pick(a["docs"], a["cum"])
        tok = self.new_token()
        req, granted = self.session_scopes(a, None, mods)
        self.token_ev(t, a, "issued", tok, "authorization_code", req, granted, None, 3600, doc["user"], doc["ip"], a["ua"])
        ct = t + r.uniform(1, 4)
        nq = max(1, count_around(r, 3 * mods.get("req_mult", 1.0), 0.6))
        for _ in range(nq):
            ct = self.population_search(a, ct, tok, a["purpose"][0], doc["user"], doc["ip"], a["ua"])
            # drill into a couple of patients
            for _ in range(r.randint(0, 3)):
                pid = r.choice(self.pt_universe)
                self.access(ct, a, "GET", "Patient/" + pid, 200, tok, 1, nbytes(r, "Patient", 1, False), pid, 1,
                            a["purpose"][0], doc["user"], doc["ip"], a["ua"])
                ct += r.uniform(3, 30)
            ct += self.gap() * 3
        return tok, ct

    # ----- bulk export
    def bulk_url(self, a, path):
        return (BASE + path) if a.get("abs_urls") else path

    def bulk_job(self, a, t, kind, types, size, since=None, group=None, mods=None, post=None, delete=None,
                 user=None, purpose=None, tok=None, scopes=None, exp=300):
        """One Bulk Data export: token, kick-off, polling, downloads. Returns end time."""
        r = self.rng
        mods = mods or {}
        purpose = purpose or mods.get("pou", a["purpose"][0])
        ip = a.get("ip", "10.50.1.10")
        ua = a.get("ua")
        post = a.get("post", False) if post is None else post
        delete = a.get("delete", False) if delete is None else delete
        if tok is None:
            req, granted = scopes if scopes else self.session_scopes(a, None, mods)
            tok = self.new_token()
            self.token_ev(t, a, "issued", tok, "client_credentials", req, granted, None, exp, None, ip, ua)
            tok_t = t
        else:
            tok_t = t
            req = granted = None
        t += r.uniform(0.3, 1.5)
        if kind == "group":
            path = "Group/%s/$export" % group
        elif kind == "patient":
            path = "Patient/$export"
        else:
            path = "$export"
        params = "_type=" + ",".join(types)
        if since:
            params += "&_since=" + since
        if post:
            url = self.bulk_url(a, path)
            self.access(t, a, "POST", url, 202, tok, 0, 0, None, None, purpose, user, ip, ua)
        else:
            url = self.bulk_url(a, path + "?" + params)
            self.access(t, a, "GET", url, 202, tok, 0, 0, None, None, purpose, user, ip, ua)
        self.job_seq += 1
        job = "%s%04d" % (hexid(r, 8), self.job_seq)
        status = self.bulk_url(a, "bulkstatus/" + job)
        dur = 20 + size / 400.0 * r.uniform(0.6, 1.6)
        elapsed, poll = 0.0, r.choice([10, 15, 30])
        while elapsed < dur:
            elapsed += poll * r.uniform(0.95, 1.1)
            t += poll * r.uniform(0.95, 1.1)
            if t - tok_t > exp - 20:
                tok = self.new_token()
                self.token_ev(t, a, "issued", tok, "client_credentials", granted or a["scopes"], granted or a["scopes"],
                              None, exp, user, ip, ua)
                tok_t = t
                t += r.uniform(0.2, 1)
            self.access(t, a, "GET", status, 202 if elapsed < dur else 200, tok, None,
                        0 if elapsed < dur else 250 + 170 * (len(types) + size // 20000), None, None, purpose, user, ip, ua)
            poll = min(120, poll * 1.5)
        # downloads
        weights = {"Patient": 1, "Observation": 9, "Condition": 2, "Encounter": 2, "MedicationRequest": 1.5,
                   "Procedure": 1, "Immunization": 3, "Claim": 1, "ExplanationOfBenefit": 1, "Coverage": .3}
        tw = sum(weights.get(x, 1) for x in types)
        n_file = 0
        pats = max(1, int(size / 25))
        for typ in types:
            cnt = int(size * weights.get(typ, 1) / tw * r.uniform(0.8, 1.2))
            if cnt == 0:
                continue
            while cnt > 0:
                n_file += 1
                lines = min(cnt, 25000)
                cnt -= lines
                t += r.uniform(0.5, 3) + lines / 8000.0
                if t - tok_t > exp - 20:
                    tok = self.new_token()
                    self.token_ev(t, a, "issued", tok, "client_credentials", granted or a["scopes"], granted or a["scopes"],
                                  None, exp, user, ip, ua)
                    tok_t = t
                    t += r.uniform(0.2, 1)
                self.access(t, a, "GET", self.bulk_url(a, "bulkfiles/%s/%d.ndjson" % (job, n_file)), 200, tok, lines,
                            nbytes(r, typ, lines, False), None, min(pats, lines), purpose, user, ip, ua)
        if delete:
            t += r.uniform(1, 5)
            self.access(t, a, "DELETE", status, 202, tok, 0, 0, None, None, purpose, user, ip, ua)
        return t, tok

    def bulk_day(self, a, d, mods_override=None, size_mult=1.0):
        r = self.rng
        t = day_start(d) + a["hour"] * 3600 + r.uniform(-600, 900)
        mods = mods_override if mods_override is not None else self.active_mods(a, t)
        since = fmt(day_start(d - 1) + a["hour"] * 3600)[:19] + "Z"
        if a.get("weekly_dow") is not None:
            if weekday(d) != a["weekly_dow"]:
                return
            size = a["full_size"] * r.uniform(0.9, 1.1)
            since = None
        elif a.get("full_dow") is not None and weekday(d) == a["full_dow"]:
            size = a["full_size"] * r.uniform(0.95, 1.05)
            since = None
        else:
            size = a["inc_size"] * r.uniform(0.6, 1.4) * (0.55 if weekday(d) >= 5 else 1.0)
        size *= size_mult
        if mods.get("full"):
            since = None
        types = mods.get("types", a["types"])
        self.bulk_job(a, t, a["export"], types, int(size), since, a.get("group"), mods)

    # ----- backend API traffic
    def api_session(self, a, t, mods=None):
        r = self.rng
        mods = mods if mods is not None else self.active_mods(a, t)
        tok = self.new_token()
        req, granted = self.session_scopes(a, None, mods)
        ip, ua, pou = a["ip"], a["ua"], mods.get("pou", a["purpose"][0])
        self.token_ev(t, a, "issued", tok, "client_credentials", req, granted, None, 300, None, ip, ua)
        ct = t + r.uniform(0.3, 1.2)
        if a.get("intros") and r.random() < a["intros"]:
            self.token_ev(ct - 0.1, a, "introspected", tok, None, None, None, None, None, None, "10.50.0.5", "fhir-gateway/2.3")
        n = max(1, count_around(r, a["calls"] * mods.get("req_mult", 1.0), 0.5))
        api = a["api"]
        for _ in range(n):
            if ct - t > 270:
                break
            if api == "claims":
                pid = r.choice(self.pt_universe)
                x = r.random()
                if x < 0.45:
                    n_ = count_around(r, 6, 0.8)
                    self.access(ct, a, "GET", "ExplanationOfBenefit?patient=%s&_lastUpdated=gt%s" % (pid, fmt(t - 86400 * 30)[:10]),
                                200, tok, n_, nbytes(r, "ExplanationOfBenefit", n_), pid, 1, pou, None, ip, ua)
                elif x < 0.75:
                    n_ = count_around(r, 3, 0.8)
                    self.access(ct, a, "GET", "Claim?patient=%s&status=active" % pid, 200, tok, n_, nbytes(r, "Claim", n_),
                                pid, 1, pou, None, ip, ua)
                else:
                    n_ = r.choice([0, 1, 1, 1, 2])
                    self.access(ct, a, "GET", "Coverage?beneficiary=Patient/%s" % pid, 200, tok, n_, nbytes(r, "Coverage", n_),
                                pid, 1, pou, None, ip, ua)
            elif api == "sched":
                x = r.random()
                if x < 0.5:
                    n_ = r.randint(0, 40)
                    self.access(ct, a, "GET", "Slot?schedule=Schedule/sch-%d&status=free&start=ge%s" % (r.randint(1, 80), fmt(ct)[:10]),
                                200, tok, n_, nbytes(r, "Slot", n_), None, None, pou, None, ip, ua)
                elif x < 0.65:
                    self.access(ct, a, "GET", "Schedule/sch-%d" % r.randint(1, 80), 200, tok, 1, r.randint(600, 800),
                                None, None, pou, None, ip, ua)
                elif x < 0.8:
                    self.appt_seq += 1
                    pid = r.choice(self.pt_universe)
                    self.access(ct, a, "POST", "Appointment", 201, tok, 1, r.randint(850, 1100), pid, 1, pou, None, ip, ua)
                elif x < 0.95:
                    pid = r.choice(self.pt_universe)
                    st = 200 if r.random() > 0.04 else 412
                    self.access(ct, a, "PUT", "Appointment/ap-%d" % r.randint(1000, self.appt_seq), st, tok,
                                1 if st == 200 else 0, r.randint(850, 1100) if st == 200 else 380, pid, 1, pou, None, ip, ua)
                else:
                    n_ = r.randint(0, 6)
                    self.access(ct, a, "GET", "Appointment?date=ge%s&status=booked&_lastUpdated=gt%s" % (fmt(ct)[:10], fmt(ct - 900)[:19] + "Z"),
                                200, tok, n_, nbytes(r, "Appointment", n_), None, n_, pou, None, ip, ua)
            elif api == "directory":
                typ = r.choice(["Practitioner", "PractitionerRole", "Organization", "Location"])
                n_ = count_around(r, 12, 1.0)
                self.access(ct, a, "GET", "%s?_lastUpdated=gt%s&_count=200" % (typ, fmt(ct - 4 * 3600)[:19] + "Z"), 200, tok,
                            n_, nbytes(r, typ, n_), None, None, pou, None, ip, ua)
            ct += r.uniform(0.3, 6)
        return tok, ct

    # ---------------------------------------------------------------------------------------
    def day_factor(self, a, d):
        wd = weekday(d)
        prof = a.get("profile")
        f = 1.0
        if a["kind"] in ("ehr_patient", "clinician", "population"):
            if d == HOLIDAY and not a.get("holiday_on"):
                return 0.0
            if wd >= 5:
                f = a.get("weekend", 0.12 if prof == "office" else 0.3)
            if d == HOLIDAY + 1 and not a.get("holiday_on"):
                f *= 1.25   # catch-up after the holiday
            if wd == 0:
                f *= 1.1
        elif a["kind"] == "patient":
            f = 1.15 if wd >= 5 else 1.0
            if d == HOLIDAY:
                f *= 1.1
        g = a.get("growth", 0)
        if g:
            f *= (1 + g) ** d
        return f

    def legit(self):
        r = self.rng
        for a in self.apps:
            for d in range(DAYS):
                if d in a["skip_days"]:
                    continue
                mult = a["rate_mult"].get(d, 1.0)
                k = a["kind"]
                if k == "bulk":
                    self.bulk_day(a, d)
                    continue
                if k == "backend_api":
                    lo, hi = a["active"]
                    t = day_start(d)
                    while t < day_start(d + 1):
                        h = ((t - day_start(d)) / 3600.0)
                        iv = a["interval"] if lo <= h < hi else a.get("night_interval", a["interval"])
                        if weekday(d) >= 5 and a["api"] == "claims":
                            iv = 4 * 3600
                        if mult > 1:
                            iv /= mult
                        self.api_session(a, t + r.uniform(0, 60))
                        t += iv * r.uniform(0.9, 1.1)
                    ne = a.get("nightly_export")
                    if ne:
                        t = day_start(d) + ne["hour"] * 3600 + r.uniform(-300, 600)
                        mods = self.active_mods(a, t)
                        self.bulk_job(a, t, "group", ne["types"], int(ne["size"] * r.uniform(0.6, 1.4)),
                                      fmt(t - 86400)[:19] + "Z", ne["group"], mods, post=False, delete=True)
                    continue
                noise = r.lognormvariate(-0.02, 0.2)
                lam = a["rate"] * self.day_factor(a, d) * noise * mult
                n = poisson(r, lam)
                fn = {"patient": self.patient_session, "ehr_patient": self.ehr_patient_session,
                      "clinician": self.clinician_session, "population": self.population_session}[k]
                # sessions in time order, so each device's refresh chain evolves along the timeline
                for tt in sorted(self.time_in_day(d, a["profile"]) for _ in range(n)):
                    fn(a, tt)

    # ---------------------------------------------------------------------------------------
    # incidents
    # ---------------------------------------------------------------------------------------
    def label(self, a, cat, rule, s, e, desc):
        self.labels.append(dict(client_id=a["client_id"], category=cat, rule=rule, start=fmt(s), end=fmt(e), description=desc))

    def pick_window(self, a, d, hours):
        prof = PROFILES.get(a.get("profile", "clinic"))
        # start hour with good activity
        hs = [h for h in range(24) if prof[h] >= 0.8 and h + hours <= 24] or [10]
        h = self.rng.choice(hs)
        s = day_start(d) + h * 3600 + self.rng.uniform(0, 1800)
        return s, s + hours * 3600

    def force_sessions(self, a, s, e, n):
        fn = {"patient": self.patient_session, "ehr_patient": self.ehr_patient_session,
              "clinician": self.clinician_session, "population": self.population_session}[a["kind"]]
        for i in range(n):
            fn(a, s + (e - s) * (i + 0.5) / n * self.rng.uniform(0.9, 1.05))

    def plan(self):
        """choose incidents; returns list of closures run after legit traffic. Mod-type incidents are
        registered on the apps before legit traffic so they blend with the ordinary sessions."""
        r = self.rng
        A = self.by_id
        post = []
        used = {}

        def day_for(a, lo=FIRST_INCIDENT_DAY, hi=DAYS - 1, weekday_only=False):
            while True:
                d = r.randint(lo, hi)
                if d == HOLIDAY:
                    continue
                if weekday_only and weekday(d) >= 5:
                    continue
                if any(abs(d - x) < 2 for x in used.get(a["client_id"], [])):
                    continue
                used.setdefault(a["client_id"], []).append(d)
                return d

        def choose(cands):
            free = [c for c in cands if c not in used]
            return A[r.choice(free or cands)]

        templates = []

        # ---------- scope creep
        def wildcard_patient():
            a = choose(["myhealth-portal", "med-reminder", "diabetes-diary", "chart-summary", "rpm-connect"])
            d = day_for(a)
            s, e = self.pick_window(a, d, r.choice([2, 3, 4]))
            wc = r.choice(["patient/*.rs", "patient/*.read", "patient/*.*"])

            def fn(req, gr):
                req = [x for x in req.split() if not x.startswith("patient/")] + [wc]
                return " ".join(req), " ".join(req)
            a["mods"].append((s, e, {"scope_fn": fn}))
            post.append(lambda: self.force_sessions(a, s, e, 2))
            self.label(a, "scope_creep", "wildcard_broadening", s, e, "patient app requests and is granted %s instead of its per-type scopes" % wc)
        templates.append(("scope_creep", wildcard_patient))

        def wildcard_system():
            a = choose(["warehouse-nightly", "registry-reporter", "research-cohort"])
            if a["client_id"] == "research-cohort":
                d = day_for(a)
                while weekday(d) != a["weekly_dow"]:
                    used[a["client_id"]].remove(d)
                    d = day_for(a)
            else:
                d = day_for(a)
            s = day_start(d)
            e = day_start(d) + 8 * 3600

            def fn(req, gr):
                return "system/*.rs", "system/*.rs"
            a["mods"].append((s, e, {"scope_fn": fn}))
            self.label(a, "scope_creep", "wildcard_broadening", day_start(d) + (a["hour"] - 0.3) * 3600,
                       day_start(d) + (a["hour"] + 1.5) * 3600, "backend client granted system/*.rs; registry lists per-type system scopes")
        templates.append(("scope_creep", wildcard_system))

        def wildcard_user():
            a = choose(["cardio-dash", "radiology-viewer", "oncology-notes", "rounds-board"])
            d = day_for(a, weekday_only=True)
            s, e = self.pick_window(a, d, r.choice([2, 3]))

            def fn(req, gr):
                req = [x for x in req.split() if not x.startswith("user/")] + ["user/*.rs"]
                return " ".join(req), " ".join(req)
            a["mods"].append((s, e, {"scope_fn": fn}))
            post.append(lambda: self.force_sessions(a, s, e, 2))
            self.label(a, "scope_creep", "wildcard_broadening", s, e, "clinician app granted user/*.rs instead of per-type user scopes")
        templates.append(("scope_creep", wildcard_user))

        def new_scope():
            a = choose(["labs-pocket", "med-reminder", "payer-access", "booking-self", "med-rec", "vitals-tracker"])
            d = day_for(a, weekday_only=a["kind"] != "patient")
            s, e = self.pick_window(a, d, r.choice([4, 6]))
            typ = r.choice(["DocumentReference", "Condition", "Encounter"]) if a["client_id"] != "med-rec" else "DocumentReference"
            if a["client_id"] == "vitals-tracker":
                sc = "patient/%s.read" % typ
            else:
                sc = "patient/%s.rs" % typ

            def fn(req, gr):
                return req + " " + sc, gr + " " + sc
            a["mods"].append((s, e, {"scope_fn": fn, "extra_ops": [("S", typ, "_sort=-date&_count=20" if typ != "Encounter" else "_count=20")]}))
            post.append(lambda: self.force_sessions(a, s, e, 2))
            self.label(a, "scope_creep", "registry_scope_violation", s, e, "app requests/gets %s, outside its registered scopes, and uses it" % sc)
        templates.append(("scope_creep", new_scope))

        def offline_new():
            a = choose(["labs-pocket", "booking-self", "chart-summary", "sleep-coach", "immunize-me"])
            d = day_for(a)
            if a["profile"] == "night":
                s = day_start(d) - 2 * 3600
                e = s + 6 * 3600
            else:
                s, e = self.pick_window(a, d, 6)

            def fn(req, gr):
                return req + " offline_access", gr + " offline_access"
            a["mods"].append((s, e, {"scope_fn": fn, "offline": True}))

            def go():
                self.force_sessions(a, s, e, 2)
                # the refresh chain then gets used
                res = self.sure(self.patient_session, a, s + 600, mods={"scope_fn": fn, "offline": True})
                if res:
                    tok, ct, u, dev, pid = res
                    t2 = ct + r.uniform(1800, 5400)
                    nt = self.new_token()
                    self.token_ev(t2, a, "refreshed", nt, "refresh_token", None, self.session_scopes(a, None, {"scope_fn": fn})[1],
                                  pid, 3600, u["user"], dev["ip"], dev["ua"])
                    op = self.weighted_op(a)
                    for (m, url, st, rr, b, p, pc, _typ) in self.op_requests(a, op, pid, t2 + 2):
                        self.access(t2 + 2, a, m, url, st, nt, rr, b, p, pc, a["purpose"][0], u["user"], dev["ip"], dev["ua"])
            post.append(go)
            self.label(a, "scope_creep", "offline_access_new", s, e + 3 * 3600, "app that never held offline_access requests it and starts refreshing")
        templates.append(("scope_creep", offline_new))

        def context_escalation():
            a = choose(["myhealth-portal", "labs-pocket", "vitals-tracker", "med-rec", "er-triage", "payer-access"])
            d = day_for(a, weekday_only=a["kind"] != "patient")
            s, e = self.pick_window(a, d, 2)

            def fn(req, gr):
                parts = req.split()
                out = []
                for x in parts:
                    if x.startswith("patient/") and not x.startswith("patient/Patient"):
                        out.append("user/" + x.split("/", 1)[1])
                    else:
                        out.append(x)
                return " ".join(out), " ".join(out)
            a["mods"].append((s, e, {"scope_fn": fn}))
            post.append(lambda: self.force_sessions(a, s, e, 2))
            self.label(a, "scope_creep", "context_escalation", s, e, "patient-context app granted user/ scopes")
        templates.append(("scope_creep", context_escalation))

        def revoked_use():
            a = choose(["myhealth-portal", "vitals-tracker", "diabetes-diary", "med-reminder", "payer-access", "phr-sync"])
            d = day_for(a)

            def go():
                t = self.time_in_day(d, a["profile"])
                res = self.sure(self.patient_session, a, t, mods={})
                tok, ct, u, dev, pid = res
                tr = ct + r.uniform(10, 200)
                self.token_ev(tr, a, "revoked", tok, None, None, None, None, None, u["user"], dev["ip"], dev["ua"])
                tu = tr + r.uniform(120, 1500)
                t1 = tu
                for _ in range(r.randint(2, 5)):
                    op = self.weighted_op(a)
                    for (m, url, st, rr, b, p, pc, _typ) in self.op_requests(a, op, pid, tu):
                        self.access(tu, a, m, url, st, tok, rr, b, p, pc, a["purpose"][0], None, self.pub_ip(), dev["ua"])
                        tu += r.uniform(0.5, 4)
                    tu += self.gap()
                self.label(a, "scope_creep", "revoked_token_use", t1, tu + 1, "access token used after it was revoked (different address)")
            post.append(go)
        templates.append(("scope_creep", revoked_use))

        def other_patient():
            a = choose(["myhealth-portal", "labs-pocket", "med-reminder", "peds-growth", "er-triage", "med-rec", "chart-summary"])
            d = day_for(a, weekday_only=a["kind"] != "patient")

            def go():
                t = self.time_in_day(d, a["profile"])
                if a["kind"] == "patient":
                    res = self.sure(self.patient_session, a, t, mods={})
                    tok, ct, u, dev, pid = res
                    user, ip, ua = u["user"], dev["ip"], dev["ua"]
                else:
                    res = self.sure(self.ehr_patient_session, a, t, mods={})
                    tok, ct, doc, pid = res
                    user, ip, ua = doc["user"], doc["ip"], a["ua"]
                other = r.choice(self.pt_universe)
                t1 = ct + r.uniform(2, 40)
                tt = t1
                ops = [o for _, o in a["menu"]]
                for op in r.sample(ops, min(len(ops), r.randint(1, 3))):
                    for (m, url, st, rr, b, p, pc, _typ) in self.op_requests(a, op, other, tt):
                        self.access(tt, a, m, url, st, tok, rr, b, p, pc, a["purpose"][0], user, ip, ua)
                        tt += r.uniform(0.5, 3)
                self.label(a, "scope_creep", "enforcement_gap", t1, tt + 1, "patient-context token reads another patient's record (%s)" % other)
            post.append(go)
        templates.append(("scope_creep", other_patient))

        def refresh_broadening():
            a = choose(["myhealth-portal", "vitals-tracker", "diabetes-diary", "med-reminder"])
            d = day_for(a)
            typ = {"vitals-tracker": "patient/Condition.read", "diabetes-diary": "patient/MedicationRequest.rs"}.get(
                a["client_id"], "patient/Encounter.rs")

            def go():
                # find a device with a refresh chain live at that time
                t = self.time_in_day(d, a["profile"])
                for _ in range(5000):
                    u = self.pick(a["pop"], a["cum"])
                    devs = [(x, self.chain_at(x, t)) for x in u["devices"] if x["offline"]]
                    devs = [(x, ch) for (x, ch) in devs if ch is not None]
                    if devs:
                        break
                dev, ch = devs[0] if devs else (u["devices"][0], None)
                pid = ch["pid"] if ch else u["pids"][0]
                scope = ch["scope"] if ch else a["scopes"]
                tok = self.new_token()
                g = scope + " " + typ
                self.token_ev(t, a, "refreshed", tok, "refresh_token", None, g, pid, 3600, u["user"], dev["ip"], dev["ua"])
                ct = t + 1
                rt = typ.split("/")[1].split(".")[0]
                for op in [self.weighted_op(a), ("S", rt, "_count=50"), self.weighted_op(a)]:
                    for (m, url, st, rr, b, p, pc, _typ) in self.op_requests(a, op, pid, ct):
                        self.access(ct, a, m, url, st, tok, rr, b, p, pc, a["purpose"][0], u["user"], dev["ip"], dev["ua"])
                        ct += r.uniform(0.5, 3)
                    ct += self.gap()
                self.label(a, "scope_creep", "refresh_broadening", t, ct + 1, "refresh grants %s, not in the original grant" % typ)
            post.append(go)
        templates.append(("scope_creep", refresh_broadening))

        def expired_use():
            a = choose(["cardio-dash", "med-rec", "oncology-notes", "myhealth-portal"])
            d = day_for(a, weekday_only=True)

            def go():
                t = self.time_in_day(d, a["profile"], 8, 12)
                if a["kind"] == "clinician":
                    tok, ct, doc = self.clinician_session(a, t, mods={})
                    user, ip, ua, pid = doc["user"], doc["ip"], a["ua"], r.choice(self.census)
                elif a["kind"] == "ehr_patient":
                    res = self.sure(self.ehr_patient_session, a, t, mods={})
                    tok, ct, doc, pid = res
                    user, ip, ua = doc["user"], doc["ip"], a["ua"]
                else:
                    tok, ct, u, dev, pid = self.sure(self.patient_session, a, t, mods={})
                    user, ip, ua = u["user"], dev["ip"], dev["ua"]
                t1 = t + 3600 + r.uniform(1800, 7200)
                tt = t1
                for _ in range(r.randint(3, 6)):
                    op = self.weighted_op(a)
                    for (m, url, st, rr, b, p, pc, _typ) in self.op_requests(a, op, pid, tt):
                        self.access(tt, a, m, url, st, tok, rr, b, p, pc, a["purpose"][0], user, ip, ua)
                        tt += r.uniform(0.5, 3)
                    tt += self.gap()
                self.label(a, "scope_creep", "expired_token_use", t1, tt + 1, "token (expires_in 3600) served requests hours after expiry")
            post.append(go)
        templates.append(("scope_creep", expired_use))

        # ---------- purpose drift
        def new_types():
            a = choose(["nurse-handoff", "phr-sync", "rounds-board", "quality-measures"])
            d = day_for(a, hi=DAYS - 2)
            s, e = day_start(d), day_start(d + 2)
            if a["client_id"] == "quality-measures":
                a["mods"].append((s, e, {"types": a["types"] + ["Claim", "ExplanationOfBenefit", "Coverage"]}))
                self.label(a, "purpose_drift", "resource_mix_shift", s + (a["hour"] - 0.3) * 3600, e,
                           "quality engine's export starts including Claim/ExplanationOfBenefit/Coverage")
                return
            if a["client_id"] == "rounds-board":
                ex = [("S", "DocumentReference", "category=clinical-note&_sort=-date&_count=20")]
                what = "DocumentReference (clinical notes)"
            elif a["client_id"] == "phr-sync":
                ex = [("S", "ExplanationOfBenefit", "_count=50"), ("S", "Claim", "_count=50")]
                what = "Claim/ExplanationOfBenefit"
            else:
                ex = [("S", "ExplanationOfBenefit", "_count=50"), ("S", "Coverage", "status=active"), ("S", "Claim", "_count=50")]
                what = "Claim/ExplanationOfBenefit/Coverage"
            a["mods"].append((s, e, {"extra_ops": ex}))
            self.label(a, "purpose_drift", "resource_mix_shift", s, e, "app starts reading %s it never touched (scope allows it)" % what)
        templates.append(("purpose_drift", new_types))

        def export_new():
            a = choose(["pop-health", "directory-sync", "sched-integration", "claims-bridge"])
            d = day_for(a, weekday_only=True)

            def go():
                t = day_start(d) + r.uniform(10, 16) * 3600 if a["kind"] == "population" else day_start(d) + r.uniform(1, 5) * 3600
                if a["client_id"] == "pop-health":
                    doc = self.pick(a["docs"], a["cum"])
                    tok = self.new_token()
                    req, gr = self.session_scopes(a)
                    self.token_ev(t, a, "issued", tok, "authorization_code", req, gr, None, 3600, doc["user"], doc["ip"], a["ua"])
                    a2 = dict(a, ip=doc["ip"], post=False, delete=False)
                    end, _ = self.bulk_job(a2, t + 5, "group", ["Patient", "Condition", "Observation", "Encounter"], r.randint(15000, 40000),
                                           None, "g-diabetes-registry", user=doc["user"], tok=tok, exp=3600)
                elif a["client_id"] == "directory-sync":
                    end, _ = self.bulk_job(a, t, "system", ["Practitioner", "PractitionerRole", "Organization", "Location"],
                                           r.randint(8000, 20000), None)
                elif a["client_id"] == "claims-bridge":
                    end, _ = self.bulk_job(a, t, "patient", ["Patient", "Claim", "ExplanationOfBenefit", "Coverage"],
                                           r.randint(20000, 50000), None)
                else:
                    end, _ = self.bulk_job(a, t, "system", ["Appointment", "Slot", "Schedule"], r.randint(10000, 30000), None)
                self.label(a, "purpose_drift", "bulk_export_new", t, end + 1,
                           "app that never ran this kind of bulk export kicks off one (%s)" % ("Patient/$export" if a["client_id"] == "claims-bridge" else "$export"))
            post.append(go)
        templates.append(("purpose_drift", export_new))

        def population_new():
            a = choose(["myhealth-portal", "med-rec", "er-triage", "chart-summary", "labs-pocket", "peds-growth"])
            d = day_for(a, weekday_only=a["kind"] != "patient")

            def go():
                t = self.time_in_day(d, a["profile"])
                if a["kind"] == "patient":
                    res = self.sure(self.patient_session, a, t, mods={})
                    tok, ct, u, dev, pid = res
                    user, ip, ua = u["user"], dev["ip"], dev["ua"]
                else:
                    tok, ct, doc, pid = self.sure(self.ehr_patient_session, a, t, mods={})
                    user, ip, ua = doc["user"], doc["ip"], a["ua"]
                t1 = ct + r.uniform(3, 30)
                tt = t1
                for _ in range(r.randint(2, 4)):
                    tt = self.population_search(a, tt, tok, a["purpose"][0], user, ip, ua, pages_mean=3, count=r.choice([50, 100]))
                    tt += self.gap()
                self.label(a, "purpose_drift", "population_access_new", t1, tt + 1,
                           "patient-context app searches across all patients (no patient parameter)")
            post.append(go)
        templates.append(("purpose_drift", population_new))

        def purpose_shift():
            a = choose(["cardio-dash", "med-rec", "rounds-board", "nurse-handoff", "er-triage"])
            d = day_for(a, weekday_only=True)
            s, e = day_start(d) + 7 * 3600, day_start(d) + 19 * 3600
            pou = r.choice(["HPAYMT", "HMARKT", "HRESCH"])
            a["mods"].append((s, e, {"pou": pou}))
            self.label(a, "purpose_drift", "new_purpose", s, e, "clinical app's requests carry purpose_of_use %s instead of TREAT" % pou)
        templates.append(("purpose_drift", purpose_shift))

        def off_hours():
            a = choose(["oncology-notes", "radiology-viewer", "pop-health", "peds-growth"])
            d = day_for(a, hi=DAYS - 3, weekday_only=True)

            def go():
                doc = self.pick(a["docs"], a["cum"])
                s = day_start(d + 1) + r.uniform(1.0, 2.5) * 3600
                t = s
                for night in range(2):
                    t = day_start(d + 1 + night) + r.uniform(1.0, 2.5) * 3600
                    for _ in range(r.randint(2, 3)):
                        if a["kind"] == "clinician":
                            _, ct, _ = self.clinician_session(a, t, mods={}, doc=doc)
                        elif a["kind"] == "population":
                            _, ct = self.population_session(a, t, mods={})
                        else:
                            _, ct, _, _ = self.sure(self.ehr_patient_session, a, t, mods={}, doc=doc)
                        t = ct + r.uniform(60, 600)
                self.label(a, "purpose_drift", "off_hours", s, t + 1, "office-hours app used by one account at 1-4 am on two nights")
            post.append(go)
        templates.append(("purpose_drift", off_hours))

        # ---------- data volume
        def token_outlier():
            a = choose(["myhealth-portal", "vitals-tracker", "labs-pocket", "med-reminder", "med-rec", "er-triage"])
            d = day_for(a, weekday_only=a["kind"] != "patient")
            want_mult = r.uniform(10, 40)

            def go():
                # the app's normal data per token, measured on the clean weeks
                toks = self.app_tokens.get(a["client_id"], [])
                vals = [self.tok_stats.get(x, 0) for x in toks]
                per = max(5.0, sum(vals) / max(1, len(vals)))
                # keep the app's daily total within ~1.45x: the outlier adds at most 45% of a day's tokens' worth
                per_day = len(toks) / float(FIRST_INCIDENT_DAY)
                mult = max(10.0, min(want_mult, 0.45 * per_day))
                target = int(per * mult)
                t = self.time_in_day(d, a["profile"], 9, 17)
                if a["kind"] == "patient":
                    tok, ct, u, dev, pid = self.sure(self.patient_session, a, t, mods={})
                    user, ip, ua = u["user"], dev["ip"], dev["ua"]
                elif a["kind"] == "ehr_patient":
                    tok, ct, doc, pid = self.sure(self.ehr_patient_session, a, t, mods={})
                    user, ip, ua = doc["user"], doc["ip"], a["ua"]
                else:
                    tok, ct, doc = self.clinician_session(a, t, mods={})
                    user, ip, ua, pid = doc["user"], doc["ip"], a["ua"], None
                got = self.tok_stats.get(tok, 0)
                typ = {"med-rec": "MedicationRequest"}.get(a["client_id"], "Observation")
                t1 = ct + r.uniform(5, 60)
                tt = t1
                base_q = "%s?patient=%s&_count=200" % (typ, pid) if pid else "%s?_count=200&_lastUpdated=ge%s" % (typ, fmt(t - 365 * 86400)[:10])
                if pid is None:
                    # clinician: sweep through the unit's charts one patient at a time
                    while got < target:
                        p = r.choice(self.census)
                        n = r.randint(120, 200)
                        self.access(tt, a, "GET", "%s?patient=%s&_count=200" % (typ, p), 200, tok, n, nbytes(r, typ, n), p, 1,
                                    a["purpose"][0], user, ip, ua)
                        got += n
                        tt += r.uniform(0.8, 4)
                else:
                    first = True
                    while got < target:
                        n = 200
                        self.access(tt, a, "GET", base_q if first else base_q + "&_page_token=" + hexid(r, 10), 200, tok, n,
                                    nbytes(r, typ, n), pid, 1, a["purpose"][0], user, ip, ua)
                        first = False
                        got += n
                        tt += r.uniform(0.8, 4)
                self.label(a, "data_volume", "token_outlier", t1, tt + 1,
                           "one token retrieves %.0fx the app's per-token norm (%d vs ~%.0f resources)" % (got / per, got, per))
            post.append(go)
        templates.append(("data_volume", token_outlier))

        def slow_drip():
            a = choose(["labs-pocket", "oncology-notes", "payer-access", "med-reminder", "radiology-viewer", "chart-summary",
                        "claims-bridge", "er-triage"])
            d = day_for(a, hi=DAYS - 3)
            used[a["client_id"]] += [d + 1, d + 2]
            f = r.uniform(1.35, 4.0)
            for k in range(3):
                a["rate_mult"][d + k] = f
            self.label(a, "data_volume", "slow_drip", day_start(d), day_start(d + 3),
                       "daily volume raised %.2fx for three days" % f)
        templates.append(("data_volume", slow_drip))

        def hourly_burst():
            a = choose(["cardio-dash", "rounds-board", "myhealth-portal", "med-rec", "nurse-handoff", "vitals-tracker"])
            d = day_for(a, weekday_only=a["kind"] != "patient")

            def go():
                s, e = self.pick_window(a, d, 1)
                # normal requests in that hour of day, measured on the clean weeks
                h = int(((s - LOCAL_OFFSET) % 86400) // 3600)
                per_hour = max(10, self.app_hour.get(a["client_id"], {}).get(h, 0) / float(FIRST_INCIDENT_DAY))
                want = int(per_hour * r.uniform(8, 15))
                cnt = 0
                t = s
                fn = {"patient": self.patient_session, "ehr_patient": self.ehr_patient_session,
                      "clinician": self.clinician_session}[a["kind"]]
                before = len(self.events)
                while len(self.events) - before < want and t < e:
                    fn(a, t, mods={"req_mult": 2.0})
                    t += (e - s) / max(10, want / 8.0) * r.uniform(0.5, 1.5)
                self.label(a, "data_volume", "hourly_burst", s, e, "one hour with ~%dx the app's usual requests for that hour" % round(want / per_hour))
            post.append(go)
        templates.append(("data_volume", hourly_burst))

        def export_oversize():
            a = choose(["registry-reporter", "warehouse-nightly"])
            d = day_for(a)
            while a.get("full_dow") is not None and weekday(d) == a["full_dow"]:
                d = day_for(a)
            a["skip_days"].add(d)
            mult = r.uniform(12, 25)

            def go():
                t = day_start(d) + a["hour"] * 3600 + r.uniform(-600, 900)
                size = int(a["inc_size"] * mult)
                end, _ = self.bulk_job(a, t, a["export"], a["types"], size, None, a.get("group"))
                self.label(a, "data_volume", "export_volume_spike", t, end + 1,
                           "nightly incremental export replaced by a full pull (~%.0fx the usual files)" % mult)
            post.append(go)
        templates.append(("data_volume", export_oversize))

        # selection: every category represented, 12-15 incidents
        must = ["wildcard_patient", "new_scope", "revoked_use", "other_patient", "new_types", "export_new",
                "population_new", "token_outlier", "slow_drip", "hourly_burst"]
        fns = {f.__name__: (c, f) for c, f in templates}
        rest = [n for n in fns if n not in must]
        # rotate the optional templates with the seed so consecutive seeds cover all of them
        k0 = ((self.seed - 101) * 3) % len(rest)
        chosen = must + [rest[(k0 + i) % len(rest)] for i in range(5)]
        r.shuffle(chosen)
        for n in chosen:
            fns[n][1]()
        return post

    def stats(self):
        self.app_tokens = {}
        self.app_hour = {}
        lim = int(day_start(FIRST_INCIDENT_DAY) * 1e6)
        for (tu, _, ev) in self.events:
            if tu >= lim:
                continue
            c = ev["client_id"]
            if ev["type"] == "token" and ev["event"] in ("issued", "refreshed"):
                self.app_tokens.setdefault(c, []).append(ev["token_id"])
            elif ev["type"] == "access":
                h = int(((tu / 1e6 - LOCAL_OFFSET) % 86400) // 3600)
                dd = self.app_hour.setdefault(c, {})
                dd[h] = dd.get(h, 0) + 1

    def run(self):
        post = self.plan()
        self.legit()
        self.stats()
        self.post_phase = True
        for fn in post:
            fn()
        end = day_start(DAYS)
        self.events = [e for e in self.events if 0 <= e[0] < int(end * 1e6)]
        self.events.sort(key=lambda e: (e[0], e[1]))
        self.labels.sort(key=lambda l: l["start"])

    def write(self, out):
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "events.ndjson"), "w") as f:
            for _, _, ev in self.events:
                f.write(json.dumps(ev, separators=(",", ":")) + "\n")
        with open(os.path.join(out, "labels.ndjson"), "w") as f:
            for l in self.labels:
                f.write(json.dumps(l, separators=(",", ":")) + "\n")
        with open(os.path.join(out, "registry.toml"), "w") as f:
            f.write("# App registry for the independent synthetic traffic (gen.py, seed %d)\n" % self.seed)
            for a in self.apps:
                f.write("\n[[app]]\n")
                f.write("client_id = %s\n" % json.dumps(a["client_id"]))
                f.write("name = %s\n" % json.dumps(a["name"]))
                f.write("purpose = [%s]\n" % ", ".join(json.dumps(p) for p in a["purpose"]))
                f.write("allowed_scopes = %s\n" % json.dumps(a["scopes"]))
                f.write("modes = [%s]\n" % ", ".join(json.dumps(m) for m in a["modes"]))
        with open(os.path.join(out, "app_days.txt"), "w") as f:
            f.write("%d\n" % (len(self.apps) * DAYS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    g = Gen(args.seed)
    g.run()
    g.write(args.out)
    print("%s: %d events, %d labels, %d apps" % (args.out, len(g.events), len(g.labels), len(g.apps)))


if __name__ == "__main__":
    main()
