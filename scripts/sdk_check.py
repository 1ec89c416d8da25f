"""The official Python SDK (smile-id-core) against a running sandbox, unchanged.

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install smile-id-core==3.0.1
    SMILE_API_KEY=... /tmp/sdk/bin/python scripts/sdk_check.py http://127.0.0.1:PORT 002

Run by .ci/run. It proves three things the project's own client cannot witness:
IdApi.submit_job reaches /v1/id_verification with the body the SDK builds and gets an
Enhanced KYC result; Utilities.get_job_status gets the job back and confirms the
response signature with the SDK's own code; and a wrong key is refused, so the
confirmation is not vacuous. Exits non-zero on the first failure.
"""
import json
import os
import sys
import urllib.request
import uuid

from smile_id_core.IdApi import IdApi
from smile_id_core.ServerError import ServerError
from smile_id_core.Utilities import Utilities

base, partner_id = sys.argv[1].rstrip("/"), sys.argv[2]
api_key = os.environ["SMILE_API_KEY"]
url = f"{base}/v1"


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


with urllib.request.urlopen(f"{url}/services") as r:
    services = json.load(r)
bvn = services["id_types"]["NG"]["BVN"]
check(bvn["id_number_regex"] == "^[0-9]{11}$", "GET /v1/services lists NG BVN's regex")
test_id = bvn["test_data"]
check(isinstance(test_id, str) and len(test_id) == 11, "services gives a BVN test number")

user_id, job_id = f"sdk-user-{uuid.uuid4()}", f"sdk-job-{uuid.uuid4()}"
partner_params = {"user_id": user_id, "job_id": job_id, "job_type": 5}
id_info = {
    "country": "NG",
    "id_type": "BVN",
    "id_number": test_id,
    "first_name": "Any",
    "last_name": "Body",
}
result = IdApi(partner_id, api_key, url).submit_job(partner_params, id_info)
check(result.get("ResultCode") == "1012", f"IdApi.submit_job -> 1012 (got {result.get('ResultCode')})")
check(result.get("IDNumber") == test_id, "the result carries the personal info")
check(result["PartnerParams"]["job_id"] == job_id, "the result echoes partner_params")

options = {
    "return_job_status": True,
    "return_history": True,
    "return_images": True,
    "use_enrolled_image": False,
}
# get_job_status insists on an int job_type although job_status does not use it (its own
# default, "1", is a string and fails its own check).
status = Utilities(partner_id, api_key, url).get_job_status(partner_params, options)
# get_job_status raises ServerError if the signature does not confirm: reaching here
# means the SDK's own confirm_signature accepted the sandbox's timestamp and signature.
check(status["code"] == "2302", "get_job_status code 2302")
check(status["job_complete"] is True, "job_complete")
check(status["job_success"] is True, "job_success")
check(status["result"]["ResultCode"] == "1012", "job_status result 1012")
check(len(status["history"]) == 1, "history lists the user's job")
check("image_links" in status, "image_links honoured")

# Options left unset: the SDK sends null for image_links/history.
status = Utilities(partner_id, api_key, url).get_job_status(partner_params, None)
check(status["job_complete"] is True, "get_job_status with default options")

try:
    Utilities(partner_id, api_key + "-wrong", url).get_job_status(partner_params, options)
    check(False, "a wrong key is refused")
except ServerError as e:
    check("401" in str(e), f"a wrong key is refused with 401 ({e})")

try:
    IdApi(partner_id, api_key, url).submit_job(partner_params, id_info)
    check(False, "a duplicate job_id is refused")
except ServerError as e:
    check("2215" in str(e), "a duplicate job_id is refused with 2215")

print("python SDK check: all passed")
