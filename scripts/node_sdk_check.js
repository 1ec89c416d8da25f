// The official Node SDK (smile-identity-core 3.2.1, from npm) against a running
// `smile-recon sandbox --tls`, unchanged. The SDK speaks only https (it rewrites any URL to
// https://), so it trusts the sandbox's self-signed certificate through
// NODE_EXTRA_CA_CERTS, as a user behind a TLS-inspecting proxy would.
//
//   SMILE_API_KEY=... NODE_EXTRA_CA_CERTS=sandbox.pem \
//     node scripts/node_sdk_check.js SDK_DIR https://127.0.0.1:PORT 002 SIGNATURE_VECTOR
//
// SDK_DIR holds node_modules/smile-identity-core; SIGNATURE_VECTOR is "TIMESTAMP SIGNATURE"
// as `smile-recon sign` computes it with the same key. Run by scripts/node_sdk_check.sh
// (and so by .ci/run). It proves: the SDK's signature is ours, bit for bit;
// IDApi.submit_job (sync Enhanced KYC) gets a signed 1012 result; IDApi.submitAsyncjob
// gets {success: true} and its signed result arrives at a callback URL; Utilities.get_job_status
// reads that job back and confirms the answer's signature with the SDK's own code; and a
// wrong key is refused (2205 on a submission, 2305 on job_status), so none of the
// confirmations is vacuous. Exits non-zero on the first failure.
'use strict';

const http = require('http');
const path = require('path');
const { createRequire } = require('module');

const [sdkDir, base, partnerId, vector] = process.argv.slice(2);
if (!sdkDir || !base || !partnerId || !vector) {
  console.error('usage: node_sdk_check.js SDK_DIR BASE_URL PARTNER_ID "TIMESTAMP SIGNATURE"');
  process.exit(2);
}
const apiKey = process.env.SMILE_API_KEY;
if (!apiKey) {
  console.error('SMILE_API_KEY is not set');
  process.exit(2);
}
const sdkRequire = createRequire(path.join(path.resolve(sdkDir), 'package.json'));
const sdk = sdkRequire('smile-identity-core');
const axios = sdkRequire('axios');
const { IDApi, Signature, Utilities, JOB_TYPE } = sdk;
const sdkVersion = sdkRequire('smile-identity-core/package.json').version;

// The SDK takes a server as 0 (test), 1 (production) or a URL, and makes it https.
const server = `${base.replace(/\/+$/, '')}/v1`;

function check(cond, what) {
  if (!cond) {
    console.error(`FAIL: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

function uuid() {
  return require('crypto').randomUUID();
}

/** A callback receiver on loopback: resolves with the first JSON body POSTed to it. */
function callbackReceiver() {
  let deliver;
  const received = new Promise((resolve) => {
    deliver = resolve;
  });
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      try {
        deliver({ path: req.url, body: JSON.parse(body) });
      } catch (e) {
        deliver({ path: req.url, body: null, error: String(e) });
      }
    });
  });
  return new Promise((resolve) => {
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      resolve({ url: `http://127.0.0.1:${port}/smile-callback`, received, close: () => srv.close() });
    });
  });
}

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The HTTP status and Smile ID code of a refused call (axios rejects non-2xx). */
async function refusal(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    if (!e.response) {
      throw e;
    }
    return { status: e.response.status, code: e.response.data && e.response.data.code };
  }
}

async function main() {
  check(sdkVersion === '3.2.1', `smile-identity-core ${sdkVersion} (3.2.1 expected)`);
  check(server.startsWith('https://'), `the sandbox is served over https (${server})`);

  // 1. Signature: the SDK's, for a fixed timestamp, is what smile-recon computes.
  const [vectorTimestamp, vectorSignature] = vector.split(' ');
  const signer = new Signature(partnerId, apiKey);
  const { signature } = signer.generate_signature(vectorTimestamp);
  check(signature === vectorSignature, 'Signature.generate_signature matches `smile-recon sign`');
  check(signer.confirm_signature(vectorTimestamp, vectorSignature), 'Signature.confirm_signature agrees');

  // Test data: GET /v1/services (unauthenticated), over the same trusted https.
  const services = (await axios.get(`${server}/services`)).data;
  const bvn = services.id_types.NG.BVN;
  check(bvn.id_number_regex === '^[0-9]{11}$', 'GET /v1/services lists NG BVN');
  const idNumber = bvn.test_data;
  check(/^[0-9]{11}$/.test(idNumber), `services gives a BVN test number (${idNumber})`);
  const idInfo = {
    country: 'NG',
    id_type: 'BVN',
    id_number: idNumber,
    first_name: 'Any',
    last_name: 'Body',
  };

  // 2. IDApi.submit_job: sync Enhanced KYC on /v1/id_verification.
  const idApi = new IDApi(partnerId, apiKey, server);
  const sync = { user_id: `node-user-${uuid()}`, job_id: `node-job-${uuid()}`, job_type: JOB_TYPE.ENHANCED_KYC };
  const result = await idApi.submit_job(sync, idInfo);
  check(result.ResultCode === '1012', `IDApi.submit_job -> 1012 (got ${result.ResultCode})`);
  check(result.Actions && result.Actions.Verify_ID_Number === 'Verified', 'Actions.Verify_ID_Number Verified');
  check(result.IDNumber === idNumber && typeof result.FullName === 'string', 'the result carries the personal info');
  check(result.PartnerParams && result.PartnerParams.job_id === sync.job_id, 'the result echoes partner_params');
  check(signer.confirm_signature(result.timestamp, result.signature), 'the result\'s signature confirms');

  // 3. IDApi.submitAsyncjob with a callback: {success: true}, then the signed result.
  const receiver = await callbackReceiver();
  const job = { user_id: `node-user-${uuid()}`, job_id: `node-job-${uuid()}`, job_type: JOB_TYPE.ENHANCED_KYC };
  const ack = await idApi.submitAsyncjob(job, idInfo, receiver.url);
  check(ack && ack.success === true, `IDApi.submitAsyncjob -> {success: true} (got ${JSON.stringify(ack)})`);
  const callback = await within(10000, receiver.received, 'the callback');
  receiver.close();
  const cb = callback.body;
  check(callback.path === '/smile-callback' && cb !== null, `the callback arrived as JSON (${callback.error || 'ok'})`);
  check(cb.ResultCode === '1012', `the callback carries 1012 (got ${cb.ResultCode})`);
  check(cb.PartnerParams && cb.PartnerParams.job_id === job.job_id, 'the callback is for our job');
  check(signer.confirm_signature(cb.timestamp, cb.signature), 'the callback\'s signature confirms');

  // 4. Utilities.get_job_status for that job: the SDK confirms the answer's signature
  // itself and throws when it does not.
  const utilities = new Utilities(partnerId, apiKey, server);
  const status = await utilities.get_job_status(job.user_id, job.job_id, {
    return_history: true,
    return_images: true,
  });
  check(status.code === '2302', `get_job_status code 2302 (got ${status.code})`);
  check(status.job_complete === true && status.job_success === true, 'job_complete and job_success');
  check(status.result && status.result.ResultCode === '1012', 'job_status result 1012');
  check(status.result.PartnerParams.job_id === job.job_id, 'job_status answers for our job');
  check(Array.isArray(status.history) && status.history.length === 1, 'history lists the user\'s job');
  check(status.image_links !== undefined, 'image_links honoured');
  const plain = await utilities.get_job_status(job.user_id, job.job_id);
  check(plain.job_complete === true, 'get_job_status with default options');

  // 5. A wrong key is refused: by the submission endpoints (2205) and by job_status (2305).
  const wrongKey = `${apiKey}-wrong`;
  const fresh = { user_id: `node-user-${uuid()}`, job_id: `node-job-${uuid()}`, job_type: JOB_TYPE.ENHANCED_KYC };
  const refusedSubmit = await refusal(new IDApi(partnerId, wrongKey, server).submit_job(fresh, idInfo));
  check(
    refusedSubmit && refusedSubmit.status === 401 && refusedSubmit.code === '2205',
    `a wrong key is refused on submit_job with 401/2205 (got ${JSON.stringify(refusedSubmit)})`,
  );
  const refusedStatus = await refusal(new Utilities(partnerId, wrongKey, server).get_job_status(job.user_id, job.job_id));
  check(
    refusedStatus && refusedStatus.status === 401 && refusedStatus.code === '2305',
    `a wrong key is refused on get_job_status with 401/2305 (got ${JSON.stringify(refusedStatus)})`,
  );

  // A duplicate job_id is refused (2215): the one idempotency the API gives.
  const duplicate = await refusal(idApi.submit_job(sync, idInfo));
  check(duplicate && duplicate.code === '2215', `a duplicate job_id is refused with 2215 (got ${JSON.stringify(duplicate)})`);

  console.log('node SDK check: all passed');
}

main().catch((e) => {
  const detail = e && e.response ? ` (HTTP ${e.response.status}: ${JSON.stringify(e.response.data)})` : '';
  console.error(`FAIL: ${e && e.stack ? e.stack : e}${detail}`);
  process.exit(1);
});
