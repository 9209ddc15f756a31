-- Check several rate-limit counters and consume from all of them, or from none.
-- The arithmetic mirrors meterline/ratelimit/algorithms.py step for step.
--
-- KEYS[i]  the counter of check i (all keys share one {hash tag}: one slot on Cluster)
-- ARGV[1]  now (unix seconds, exact float text)      ARGV[2] consume: "1" or "0"
-- ARGV[3]  decision token (names log entries and concurrency leases)
-- then per check, 6 values: algorithm, limit, window, capacity, cost, window end
-- Returns {all_allowed, then per check: allowed, remaining, reset_at, retry_after}.

local now = tonumber(ARGV[1])
local consume = ARGV[2] == "1"
local token = ARGV[3]
local EPS = 1e-9

local function fl(x)
  local v = math.floor(x + EPS)
  if v < 0 then return 0 end
  return v
end

local floor = math.floor
local function num(x)
  -- integral values go back as integer replies (exact); others as exact float text
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end
  return string.format("%.17g", x)
end

local function ttl_ms(expires)
  local ms = math.ceil((expires - now) * 1000)
  if ms < 1 then ms = 1 end
  return ms
end

local results = {}
local writes = {}
local all_allowed = true

for i = 1, #KEYS do
  local key = KEYS[i]
  local base = 3 + (i - 1) * 6
  local algo = ARGV[base + 1]
  local limit = tonumber(ARGV[base + 2])
  local window = tonumber(ARGV[base + 3])
  local capacity = tonumber(ARGV[base + 4])
  local cost = tonumber(ARGV[base + 5])
  local wend = tonumber(ARGV[base + 6])
  local allowed, remaining, reset, retry = false, 0, now, 0
  local write = nil

  if limit <= 0 then
    if algo == "fixed_window" then reset = wend else reset = now + window end
    retry = reset - now

  elseif algo == "fixed_window" then
    local count = tonumber(redis.call("GET", key) or "0")
    reset = wend
    if count + cost <= limit then
      allowed, remaining = true, limit - count - cost
      write = function() redis.call("SET", key, count + cost, "PX", ttl_ms(wend)) end
    else
      remaining = math.max(0, limit - count)
      retry = wend - now
    end

  elseif algo == "sliding_log" then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", num(now - window))
    local n = redis.call("ZCARD", key)
    if n + cost <= limit then
      allowed, remaining, reset = true, limit - n - cost, now + window
      write = function()
        for j = 1, cost do redis.call("ZADD", key, num(now), token .. ":" .. j) end
        redis.call("PEXPIRE", key, ttl_ms(now + window))
      end
    else
      remaining = math.max(0, limit - n)
      if cost > limit then
        retry = window
      else
        local idx = n + cost - limit - 1
        local at = redis.call("ZRANGE", key, idx, idx, "WITHSCORES")
        retry = tonumber(at[2]) + window - now
      end
      if n > 0 then
        local last = redis.call("ZRANGE", key, -1, -1, "WITHSCORES")
        reset = tonumber(last[2]) + window
      else
        reset = now + window
      end
    end

  elseif algo == "sliding_window" then
    local index = math.floor(now / window)
    local cur, prev = 0, 0
    local held = redis.call("HMGET", key, "i", "c", "p")
    if held[1] then
      local si = tonumber(held[1])
      if si == index then
        cur = tonumber(held[2])
        prev = tonumber(held[3])
      elseif si == index - 1 then
        prev = tonumber(held[2])
      end
    end
    local start = index * window
    local elapsed = now - start
    local estimate = prev * (1 - elapsed / window) + cur
    local expires = start + 2 * window
    if estimate + cost <= limit then
      allowed, remaining, reset = true, fl(limit - estimate - cost), expires
      local fresh = not (held[1] and tonumber(held[1]) == index)
      write = function()
        redis.call("HSET", key, "i", num(index), "c", cur + cost, "p", prev)
        -- the expiry is the same for every write within one window: set it once
        if fresh then redis.call("PEXPIRE", key, ttl_ms(expires)) end
      end
    else
      if cost > limit then
        retry = expires - now
      elseif cur + cost <= limit and prev > 0 then
        retry = start + window * (1 - (limit - cur - cost) / prev) - now
      elseif cur == 0 then
        retry = start + window - now
      else
        retry = start + window + math.max(0, window * (1 - (limit - cost) / cur)) - now
      end
      if retry < 0 then retry = 0 end
      remaining = fl(limit - estimate)
      if cur > 0 then reset = expires else reset = start + window end
    end

  elseif algo == "token_bucket" then
    local rate = limit / window
    local held = redis.call("HMGET", key, "t", "ts")
    local tokens
    if held[1] then
      tokens = math.min(capacity, tonumber(held[1]) + math.max(0, now - tonumber(held[2])) * rate)
    else
      tokens = capacity
    end
    if tokens >= cost then
      local left = tokens - cost
      allowed, remaining, reset = true, fl(left), now + (capacity - left) / rate
      write = function()
        redis.call("HSET", key, "t", num(left), "ts", num(now))
        redis.call("PEXPIRE", key, ttl_ms(reset))
      end
    else
      if cost <= capacity then retry = (cost - tokens) / rate else retry = window end
      remaining, reset = fl(tokens), now + (capacity - tokens) / rate
    end

  elseif algo == "gcra" then
    local interval = window / limit
    local tolerance = capacity * interval
    local held = redis.call("GET", key)
    local tat = now
    if held then tat = math.max(tonumber(held), now) end
    local new_tat = tat + cost * interval
    local allow_at = new_tat - tolerance
    if now >= allow_at - EPS then
      allowed, remaining, reset = true, fl((tolerance - (new_tat - now)) / interval), new_tat
      write = function() redis.call("SET", key, num(new_tat), "PX", ttl_ms(new_tat)) end
    else
      remaining, reset, retry = fl((tolerance - (tat - now)) / interval), tat, allow_at - now
    end

  elseif algo == "concurrency" then
    redis.call("ZREMRANGEBYSCORE", key, "-inf", num(now))
    local n = redis.call("ZCARD", key)
    if n + 1 <= limit then
      allowed, remaining = true, limit - n - 1
      write = function()
        redis.call("ZADD", key, num(now + window), token)
        redis.call("PEXPIRE", key, ttl_ms(now + window))
      end
    else
      retry = 1.0
    end

  else
    return redis.error_reply("unknown algorithm " .. tostring(algo))
  end

  if not allowed then all_allowed = false end
  writes[i] = write
  results[#results + 1] = allowed and 1 or 0
  results[#results + 1] = remaining
  results[#results + 1] = num(reset)
  results[#results + 1] = num(retry)
end

if all_allowed and consume then
  for i = 1, #KEYS do
    if writes[i] then writes[i]() end
  end
end

table.insert(results, 1, all_allowed and 1 or 0)
return results
