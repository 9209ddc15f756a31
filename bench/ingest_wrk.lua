-- Sends pre-built event batches with a unique event_id prefix per request, so every
-- event is new (a resent id would be a cheaper duplicate). The body template is split at
-- each id so a request costs the generator one table.concat.
--
-- Arguments: the body template, the ingest key, and a token unique to this run. wrk's
-- random numbers start from the same seed in every run, so without the run token a
-- second run would resend the first one's ids.
local parts = nil
local counter = 0
local run = nil
local headers = nil

function setup(thread)
  thread:set("tid", tostring(math.random(1, 1000000000)))
end

function init(args)
  local path = args[1]
  local auth = args[2]
  run = assert(args[3], "pass a token unique to this run as the third argument")
  local f = assert(io.open(path, "rb"))
  local template = f:read("*a")
  f:close()
  parts = {}
  for piece in string.gmatch(template .. "@@ID@@", "(.-)@@ID@@") do
    table.insert(parts, piece)
  end
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. auth}
end

function request()
  counter = counter + 1
  local prefix = run .. "-" .. tid .. "-" .. counter .. "-"
  local out = {parts[1]}
  for i = 2, #parts do
    out[#out + 1] = prefix
    out[#out + 1] = parts[i]
  end
  return wrk.format("POST", "/v2/events", headers, table.concat(out))
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d p50_us=%d p99_us=%d mean_us=%d duration_us=%d\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean, summary.duration))
end
