"""Regenerates tests/fixtures/signature_vectors.json with the official Python SDK.

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install smile-id-core==3.0.1
    /tmp/sdk/bin/python scripts/make_signature_vectors.py > tests/fixtures/signature_vectors.json

Every signature comes from smile_id_core.Signature.generate_signature, so the
fixture records what the official client computes, not what we think it does.
The keys are made up for the fixture; they are not real credentials.
"""
import json

from smile_id_core.Signature import Signature

CASES = [
    ("002", "short-test-key", "2026-11-22T15:37:19Z"),
    ("002", "short-test-key", "2026-11-22T15:37:19.123Z"),
    ("002", "short-test-key", "2026-11-22T15:37:19+00:00"),
    ("002", "short-test-key", "2026-11-22T15:37:19.123456+00:00"),
    ("023", "another key with spaces", "2021-08-12T17:57:00.614879"),
    ("1234", "k" * 300, "2019-10-10T12:32:04.622Z"),
    ("7", "0fd2b3c4-8e1a-4c7b-9d2e-5a6b7c8d9e0f", "1700000000"),
    ("002", "clé-ünïcødé-ключ", "2026-01-01T00:00:00.000Z"),
]

vectors = []
for partner_id, api_key, timestamp in CASES:
    sig = Signature(partner_id, api_key).generate_signature(timestamp)
    vectors.append(
        {
            "partner_id": partner_id,
            "api_key": api_key,
            "timestamp": timestamp,
            "signature": sig["signature"],
        }
    )
print(json.dumps({"generator": "smile-id-core 3.0.1 Signature.generate_signature", "vectors": vectors}, indent=2, ensure_ascii=False))
