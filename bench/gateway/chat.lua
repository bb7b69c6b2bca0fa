-- wrk script for bench/gateway/run.py: POSTs one OpenAI chat completion per request and
-- counts the answers that are not whole. Environment:
--   BENCH_MODEL   the model (or route) to ask for      (default "bench")
--   BENCH_STREAM  "1" for "stream": true               (default plain)
-- An answer counts as complete when its status is 200 and its body holds the four content
-- tokens ("Hello", " from", " the", " upstream") and, for a stream, the final
-- "data: [DONE]". done() prints one line: WRKJSON {...}.

local model = os.getenv("BENCH_MODEL") or "bench"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"Say hello."}],'
  .. '"max_tokens":16' .. (stream and ',"stream":true' or '') .. '}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad_status = 0
  incomplete = 0
end

local tokens = { "Hello", " from", " the", " upstream" }

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    return
  end
  body = body or ""
  for _, t in ipairs(tokens) do
    if not body:find(t, 1, true) then
      incomplete = incomplete + 1
      return
    end
  end
  if stream and not body:find("data: [DONE]", 1, true) then
    incomplete = incomplete + 1
  end
end

function done(summary, latency, requests)
  local bad, inc = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("bad_status")
    inc = inc + t:get("incomplete")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"bad_status":%d,"incomplete":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, bad, inc,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
