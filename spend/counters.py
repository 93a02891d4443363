"""Redis for the request path: one persistent client per process and the Lua scripts the
rate limits and spend controls run (docs/spend-controls.md).

Every key an organization's scripts touch carries the hash tag `{o:<id>}`, so one
organization's counters live in one Redis Cluster slot and a script over them runs
unchanged on a cluster. Credits are exact: a script carries an amount as "whole|units"
(whole credits and ten-billionths, 0 <= units < 10**10), two integers a Lua number holds
exactly, and adds and compares them as pairs.
"""

import os
from decimal import Decimal
from functools import cache

import redis
from django.conf import settings

SCALE = 10**10  # credits are stored with ten decimal places


def amount_encode(value: Decimal) -> str:
    whole, units = divmod(int(value.scaleb(10).to_integral_value()), SCALE)
    return f"{whole}|{units}"


def amount_decode(text: str | bytes | None) -> Decimal:
    if not text:
        return Decimal(0)
    if isinstance(text, bytes):
        text = text.decode()
    whole, units = text.split("|")
    return (Decimal(int(whole) * SCALE + int(units)) / SCALE).quantize(Decimal("1e-10"))


def redis_location() -> str | None:
    """The Redis of the request path: the default cache's, when the cache is Redis."""
    default = settings.CACHES.get("default", {})
    if not default.get("BACKEND", "").endswith("RedisCache"):
        return None
    location = default.get("LOCATION")
    return location[0] if isinstance(location, list | tuple) else location


@cache
def _client(location: str, pid: int) -> redis.Redis:
    return redis.Redis.from_url(
        location, socket_timeout=1.0, socket_connect_timeout=0.5, health_check_interval=30
    )


def client() -> redis.Redis | None:
    """This process's client (made once; a forked worker makes its own)."""
    location = redis_location()
    return _client(location, os.getpid()) if location else None


def enabled() -> bool:
    """Spend controls decide on Redis counters (settings.SPEND_COUNTERS, on by default
    wherever the cache is Redis)."""
    return bool(settings.SPEND_COUNTERS) and client() is not None


def key_prefix() -> str:
    """The default cache's prefix, so tests (a fresh prefix each) never share counters."""
    return settings.CACHES.get("default", {}).get("KEY_PREFIX", "") or "uc"


def org_tag(org_id: int) -> str:
    return f"{key_prefix()}:{{o:{org_id}}}"


class Script:
    """A Lua script sent by its SHA, loaded again after a Redis restart forgot it."""

    def __init__(self, source: str):
        self.source = source
        self.sha = ""

    def __call__(self, conn: redis.Redis, keys: list[str], args: list) -> list:
        if not self.sha:
            self.sha = conn.script_load(self.source)
        try:
            return conn.evalsha(self.sha, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.sha = conn.script_load(self.source)
            return conn.evalsha(self.sha, len(keys), *keys, *args)


# --- Rate limits: requests and tokens per key and minute --------------------------------

# KEYS: requests counter, tokens counter. ARGV: mode, rpm, tpm, tokens, ttl.
# mode "request": count one request, read the tokens.
# mode "authorize": count one request; add the tokens unless over either limit.
# mode "tokens": add tokens. mode "peek": read both.
RATE = Script(
    """
local mode, rpm, tpm, tokens, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5])
local requests = 0
if mode == 'request' or mode == 'authorize' then
  requests = redis.call('INCR', KEYS[1])
  if requests == 1 then redis.call('EXPIRE', KEYS[1], ttl) end
else
  requests = tonumber(redis.call('GET', KEYS[1]) or '0')
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local over = 0
if mode == 'authorize' then
  if requests > rpm or used + tokens > tpm then over = 1 end
end
if (mode == 'tokens' or (mode == 'authorize' and over == 0)) and tokens > 0 then
  used = redis.call('INCRBY', KEYS[2], tokens)
  if used == tokens then redis.call('EXPIRE', KEYS[2], ttl) end
end
return {requests, used, over}
"""
)


# --- Spend controls ------------------------------------------------------------------------

_AMOUNTS = """
local E = 10000000000
local function P(s)
  if not s then return 0, 0 end
  local i = string.find(s, '|', 1, true)
  return tonumber(string.sub(s, 1, i - 1)), tonumber(string.sub(s, i + 1))
end
local function S(w, f) return string.format('%.0f|%.0f', w, f) end
local function add(w1, f1, w2, f2)
  local w, f = w1 + w2, f1 + f2
  if f >= E then w, f = w + 1, f - E elseif f < 0 then w, f = w - 1, f + E end
  return w, f
end
local function sub(w1, f1, w2, f2) return add(w1, f1, -w2 - 1, E - f2) end
local function gt(w1, f1, w2, f2) return w1 > w2 or (w1 == w2 and f1 > f2) end
local function hadd(h, field, w, f)
  local a, b = P(redis.call('HGET', h, field))
  a, b = add(a, b, w, f)
  redis.call('HSET', h, field, S(a, b))
end
local function split(s)
  local out, start = {}, 1
  while true do
    local i = string.find(s, '\\0', start, true)
    if not i then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end
-- a reservation's value: credits \\0 tokens \\0 key id \\0 member \\0 project id
local function release(s, v)
  local r = split(v)
  local w, f = P(r[1])
  local nw, nf = -w - 1, E - f
  if f == 0 then nw, nf = -w, 0 end
  hadd(s, 'h:o:', nw, nf)
  hadd(s, 'h:k:' .. r[3], nw, nf)
  if r[4] ~= '' then hadd(s, 'h:m:' .. r[4], nw, nf) end
  if r[5] and r[5] ~= '' then hadd(s, 'h:p:' .. r[5], nw, nf) end
  redis.call('HINCRBY', s, 'ht', -tonumber(r[2]))
end
local function expire(s, r, x, now)
  local due = redis.call('ZRANGEBYSCORE', x, '-inf', now, 'LIMIT', 0, 500)
  for _, rid in ipairs(due) do
    local v = redis.call('HGET', r, rid)
    if v then release(s, v) end
    redis.call('HDEL', r, rid)
    redis.call('ZREM', x, rid)
  end
  return #due
end
"""

# KEYS: state, reservations, expiries, budgets, the key's requests and tokens counters,
#       the project's requests and tokens counters.
# ARGV: now (ms), reservation id, credits, tokens, key id, member, expires (ms),
#       day, week and month of now (the organization's calendar), rpm, tpm, rate ttl,
#       the key's project id, the project's rpm and tpm (0: none).
# Returns {verdict, detail, requests, tokens used, expired, project's requests, project's
# tokens used}: verdict "ok", "rebuild", "rate_requests", "rate_tokens" (detail "project"
# when the project's limit refused), "paused", "budget" (detail: budget id), "balance"
# (detail: credits available), "allocation".
AUTHORIZE = Script(
    _AMOUNTS
    + """
local s, r, x, b = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('HEXISTS', s, 'gen') == 0 then return {'rebuild', '', 0, 0, 0} end
local now, rid, cost, tokens, key, member = tonumber(ARGV[1]), ARGV[2], ARGV[3],
  tonumber(ARGV[4]), ARGV[5], ARGV[6]
local starts = {day = ARGV[8], week = ARGV[9], month = ARGV[10]}
local rpm, tpm, ttl = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local project = ARGV[14]
local expired = expire(s, r, x, now)
-- A reservation the rebuild already counted (its row was written before the rebuild read
-- the database): take it off, then decide it like any other.
local again = redis.call('HGET', r, rid)
if again then
  release(s, again)
  redis.call('HDEL', r, rid)
  redis.call('ZREM', x, rid)
end
local requests = redis.call('INCR', KEYS[5])
if requests == 1 then redis.call('EXPIRE', KEYS[5], ttl) end
local used = tonumber(redis.call('GET', KEYS[6]) or '0')
-- The project's limits over all its keys (0: none), counted the same way.
local prpm, ptpm = tonumber(ARGV[15]), tonumber(ARGV[16])
local prequests, pused = 0, 0
if prpm > 0 or ptpm > 0 then
  prequests = redis.call('INCR', KEYS[7])
  if prequests == 1 then redis.call('EXPIRE', KEYS[7], ttl) end
  pused = tonumber(redis.call('GET', KEYS[8]) or '0')
end
local function answer(verdict, detail)
  return {verdict, detail, requests, used, expired, prequests, pused}
end
if requests > rpm then return answer('rate_requests', '') end
if prpm > 0 and prequests > prpm then return answer('rate_requests', 'project') end
if used + tokens > tpm then return answer('rate_tokens', '') end
if ptpm > 0 and pused + tokens > ptpm then return answer('rate_tokens', 'project') end
if tokens > 0 then
  used = redis.call('INCRBY', KEYS[6], tokens)
  if used == tokens then redis.call('EXPIRE', KEYS[6], ttl) end
  if prpm > 0 or ptpm > 0 then
    pused = redis.call('INCRBY', KEYS[8], tokens)
    if pused == tokens then redis.call('EXPIRE', KEYS[8], ttl) end
  end
end
if redis.call('HEXISTS', s, 'p:' .. key) == 1 then return answer('paused', '') end
local cw, cf = P(cost)
local budgets = redis.call('HGETALL', b)
for i = 1, #budgets, 2 do
  local d = split(budgets[i + 1])
  local dim, subject, period = d[1], d[2], d[3]
  if dim == 'o' or (dim == 'k' and subject == key) or (dim == 'm' and subject == member)
      or (dim == 'p' and subject == project) then
    local sw, sf = P(redis.call('HGET', s, 's:' .. dim .. ':' .. subject .. ':' .. period
      .. ':' .. starts[period]))
    local hw, hf = P(redis.call('HGET', s, 'h:' .. dim .. ':' .. subject))
    local tw, tf = add(sw, sf, hw, hf)
    tw, tf = add(tw, tf, cw, cf)
    local lw, lf = P(d[4])
    if gt(tw, tf, lw, lf) then return answer('budget', budgets[i]) end
  end
end
local balance = redis.call('HGET', s, 'bal')
if balance then
  local bw, bf = P(balance)
  local hw, hf = P(redis.call('HGET', s, 'h:o:'))
  local aw, af = sub(bw, bf, hw, hf)
  if gt(cw, cf, aw, af) then return answer('balance', S(aw, af)) end
end
local allocation = redis.call('HGET', s, 'alloc')
if allocation then
  local month = tonumber(redis.call('HGET', s, 't:' .. starts.month) or '0')
  local held = tonumber(redis.call('HGET', s, 'ht') or '0')
  if month + held + tokens > tonumber(allocation) then
    return answer('allocation', allocation)
  end
end
hadd(s, 'h:o:', cw, cf)
hadd(s, 'h:k:' .. key, cw, cf)
if member ~= '' then hadd(s, 'h:m:' .. member, cw, cf) end
if project ~= '' then hadd(s, 'h:p:' .. project, cw, cf) end
redis.call('HINCRBY', s, 'ht', tokens)
redis.call('HSET', r, rid,
  cost .. '\\0' .. tokens .. '\\0' .. key .. '\\0' .. member .. '\\0' .. project)
redis.call('ZADD', x, tonumber(ARGV[7]), rid)
return answer('ok', '')
"""
)

# KEYS: state, reservations, expiries, budgets, drops. ARGV: generation, the drop count
# read before the database was, then field/value pairs of the state, "--", reservations
# as id/value/expiry triples, "--", budgets as id/value pairs. Replaces what was there in
# one step, unless counters were built meanwhile (they may already count decisions made
# after this rebuild read the database) or dropped meanwhile (what it read may be stale):
# then 0, and the caller asks again.
REBUILD = Script(
    """
if redis.call('HEXISTS', KEYS[1], 'gen') == 1 then return 0 end
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[2] then return 0 end
table.remove(ARGV, 2)
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
local i, part = 2, 1
while i <= #ARGV do
  if ARGV[i] == '--' then part = part + 1; i = i + 1
  elseif part == 1 then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); i = i + 2
  elseif part == 2 then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    redis.call('ZADD', KEYS[3], tonumber(ARGV[i + 2]), ARGV[i])
    i = i + 3
  else redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1]); i = i + 2 end
end
redis.call('HSET', KEYS[1], 'gen', ARGV[1])
return 1
"""
)

# KEYS: state. ARGV: field/amount pairs to add (amounts "whole|units"; a field starting
# "t:" adds tokens). Nothing when the counters are not built (the rebuild reads it all).
ADD = Script(
    _AMOUNTS
    + """
if redis.call('HEXISTS', KEYS[1], 'gen') == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if string.sub(ARGV[i], 1, 2) == 't:' then
    redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
  elseif ARGV[i] ~= 'bal' or redis.call('HEXISTS', KEYS[1], 'bal') == 1 then
    local w, f = P(ARGV[i + 1])
    hadd(KEYS[1], ARGV[i], w, f)
  end
end
return 1
"""
)

# KEYS: state, reservations, expiries. ARGV: reservation ids to release (settled, expired
# or refused): each one's holds come off once, whoever asks first.
RELEASE = Script(
    _AMOUNTS
    + """
local n = 0
for _, rid in ipairs(ARGV) do
  local v = redis.call('HGET', KEYS[2], rid)
  if v then
    release(KEYS[1], v)
    redis.call('HDEL', KEYS[2], rid)
    redis.call('ZREM', KEYS[3], rid)
    n = n + 1
  end
end
return n
"""
)

# KEYS: state, reservations, expiries. ARGV: now (ms), credits a batch may need, then the
# ids of the reservations the batch settles. A no-overdraft batch takes its credits here,
# checked against the balance less what is held (its own reservations' holds excepted)
# and debited from the balance in the same step, so an authorization decided before or
# after it never counts on the same credits. Returns {verdict, credits taken, generation}:
# "ok", "rebuild" (no counters) or "open" (no balance kept: the organization may overdraw).
TAKE = Script(
    _AMOUNTS
    + """
local s, r, x = KEYS[1], KEYS[2], KEYS[3]
local gen = redis.call('HGET', s, 'gen')
if not gen then return {'rebuild', '', ''} end
local balance = redis.call('HGET', s, 'bal')
if not balance then return {'open', '', gen} end
expire(s, r, x, tonumber(ARGV[1]))
local aw, af = P(balance)
aw, af = sub(aw, af, P(redis.call('HGET', s, 'h:o:')))
for i = 3, #ARGV do
  local v = redis.call('HGET', r, ARGV[i])
  if v then aw, af = add(aw, af, P(split(v)[1])) end
end
local nw, nf = P(ARGV[2])
if gt(nw, nf, aw, af) then nw, nf = aw, af end
if nw < 0 then nw, nf = 0, 0 end
aw, af = P(balance)
aw, af = sub(aw, af, nw, nf)
redis.call('HSET', s, 'bal', S(aw, af))
return {'ok', S(nw, nf), gen}
"""
)

# KEYS: state. ARGV: generation, credits. Credits a batch took and did not spend go back
# to the balance, unless the counters were rebuilt since (the rebuild read the balance
# from the database, where the batch's debit is or is not, already right).
GIVE = Script(
    _AMOUNTS
    + """
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[1], 'bal') == 0 then return 0 end
hadd(KEYS[1], 'bal', P(ARGV[2]))
return 1
"""
)
