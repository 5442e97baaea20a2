"""Schemathesis hooks for serve's API test (serve/tests/api/schemathesis.rs).

The generator cannot know which customer ids exist, so every lookup would be
a 404. This hook gives half of the schema-valid lookups (`{"customer_id"}`
alone, or inside a batch's `records`) a real id of the service's data, read
from the file SCHEMATHESIS_CUSTOMER_IDS (one id a line), so that the lookups
themselves are exercised. Negative (schema-violating) bodies are left as
generated: they must still be refused.
"""

import os
import random

import schemathesis
from schemathesis.core.parameters import ParameterLocation

with open(os.environ["SCHEMATHESIS_CUSTOMER_IDS"], encoding="utf-8") as f:
    IDS = [line.strip() for line in f if line.strip()]
RNG = random.Random(16)
USED = {"replaced": 0}


def _real(record):
    """A lookup record with a real id half of the time."""
    if isinstance(record, dict) and set(record) == {"customer_id"} and RNG.random() < 0.5:
        USED["replaced"] += 1
        return {"customer_id": RNG.choice(IDS)}
    return record


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "_meta", None)
    if meta is None or meta.is_negative_at(ParameterLocation.BODY):
        return case
    body = case.body
    if isinstance(body, dict) and "records" in body and isinstance(body["records"], list):
        case.body = {**body, "records": [_real(r) for r in body["records"]]}
    elif isinstance(body, dict):
        case.body = _real(body)
    return case


STATS = {"lookups_answered": 0, "responses": 0}


@schemathesis.hook
def after_call(context, case, response):
    STATS["responses"] += 1
    body = case.body
    records = body.get("records") if isinstance(body, dict) else None
    lookups = records if isinstance(records, list) else [body]
    real = any(isinstance(r, dict) and r.get("customer_id") in IDS for r in lookups)
    if real and response.status_code == 200:
        STATS["lookups_answered"] += 1


def _write_stats():
    path = os.environ.get("SCHEMATHESIS_STATS")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(f'{{"lookups_answered": {STATS["lookups_answered"]}, '
                    f'"responses": {STATS["responses"]}, "replaced": {USED["replaced"]}}}\n')


import atexit  # noqa: E402

atexit.register(_write_stats)
