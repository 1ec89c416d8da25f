-- wrk script: signed job_status requests cycling over the jobs of a poll manifest
-- (user_id,job_id,... with a header), all preloaded in the sandbox, so every answer is a
-- 200 with a result and a fresh signature. A fixed timestamp and its signature are fine:
-- the server signs whatever timestamp it receives (API-FACTS.md).
--   BENCH_TS, BENCH_SIG, BENCH_PARTNER (default 002), BENCH_MANIFEST
local ts = os.getenv("BENCH_TS")
local sig = os.getenv("BENCH_SIG")
local partner = os.getenv("BENCH_PARTNER") or "002"
local manifest = os.getenv("BENCH_MANIFEST")
local bodies = {}
local i = 0

function init(args)
  local f = assert(io.open(manifest, "r"))
  local header = true
  for line in f:lines() do
    if header then
      header = false
    else
      local user, job = line:match("^([^,]+),([^,]+)")
      if user then
        bodies[#bodies + 1] = string.format(
          '{"partner_id":"%s","timestamp":"%s","signature":"%s","user_id":"%s","job_id":"%s"}',
          partner, ts, sig, user, job)
      end
    end
  end
  f:close()
  i = math.random(#bodies)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
