-- wrk script for bench/run.py: POSTs BENCH_BODY to BENCH_PATH; "{key}" in the path becomes one
-- of BENCH_KEYS keys drawn at random. At the end prints one line "BENCH_JSON {...}".
local path = os.getenv("BENCH_PATH") or "/"
local keys = tonumber(os.getenv("BENCH_KEYS") or "0")
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or "null"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
end

function request()
  local p = path
  if keys > 0 then
    p = string.gsub(path, "{key}", "k" .. math.random(keys))
  end
  return wrk.format(nil, p)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
