/**
 * The Lua scripts of the Redis broker's reclaim, in two phases so that what becomes of a lost
 * lease is the failure policy's (policy.ts `planExpiry`, planned in TypeScript between them):
 * takeover acknowledges the lapsed entries (their holders are fenced off at once), keeps them in
 * `B:expiring` under a takeover token and returns them with their holders; expire applies each
 * plan to the entries still held under that token (in a cancelled job, cancels them). Between the two, the entries count as in
 * flight; a takeover whose plans never came (the reclaimer died between its two calls) is taken
 * over again by the next reclaim once it is a lease old. Key layout and conventions: prelude.ts.
 *
 * @module
 */
import { script } from "./prelude.ts";

/**
 * takeover: ARGV base, consumer, lease ms, max, dead idle ms, JSON of the connection names alive
 * now ("" when unknown). Takes over, up to max: entries of `B:expiring` a lease old (a takeover
 * whose plans never came), entries idle longer than the lease, and entries idle longer than
 * `dead idle ms` held by a consumer of this job whose connection is gone (a killed process);
 * forgets such consumers once they hold nothing. Then trims the acknowledged entries off each task
 * stream. Returns JSON [token ("" when nothing was taken), [[receipt, holder, cause (`lease` or
 * `gone`), fields], …]].
 */
const TAKEOVER = `
local base, consumer = ARGV[1], ARGV[2]
local lease_ms, max, dead_idle, live_json = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local consumers, expiring, taken = base .. ':consumers', base .. ':expiring', base .. ':taken'
local streams = task_streams(base)
local now = now_ms()
local token, out = '', {}
local function hold(receipt, holder, cause, fields)
  if token == '' then token = consumer .. ' ' .. redis.call('HINCRBY', base .. ':stats', 'takeovers', 1) end
  redis.call('HSET', expiring, receipt, cjson.encode({ t = token, h = holder, c = cause, a = now, f = fields }))
  out[#out + 1] = { receipt, holder, cause, fields }
end
-- Takes over the pending rows (id, holder, …) of one stream.
local function take(s, pending, cause)
  for _, row in ipairs(pending) do
    local id = row[1]
    local entry = redis.call('XRANGE', s[2], id, id)
    redis.call('XACK', s[2], GROUP, id)
    if #entry == 1 then
      local receipt = s[1] .. ':' .. id
      redis.call('SADD', taken, receipt)
      hold(receipt, row[2], cause, entry[1][2])
    end
  end
end
local held = redis.call('HGETALL', expiring)
for i = 1, #held, 2 do
  local x = cjson.decode(held[i + 1])
  if #out < max and now - x.a >= lease_ms then hold(held[i], x.h, x.c, x.f) end
end
for _, s in ipairs(streams) do
  if #out >= max then break end
  local stale = redis.pcall('XPENDING', s[2], GROUP, 'IDLE', lease_ms, '-', '+', max - #out)
  if type(stale) == 'table' and not stale.err then take(s, stale, 'lease') end
end
if live_json ~= '' and #out < max then
  local live = {}
  for _, name in ipairs(cjson.decode(live_json)) do live[name] = true end
  for _, name in ipairs(redis.call('SMEMBERS', consumers)) do
    local conn = 'ttg:' .. string.gsub(name, '[^%w%.%_%-]', '_')
    if name ~= consumer and not live[conn] then
      local left = 0
      for _, s in ipairs(streams) do
        if #out < max then
          local p = redis.pcall('XPENDING', s[2], GROUP, 'IDLE', dead_idle, '-', '+', max - #out, name)
          if type(p) == 'table' and not p.err then take(s, p, 'gone') end
        end
        local rest = redis.pcall('XPENDING', s[2], GROUP, '-', '+', 1, name)
        if type(rest) == 'table' and not rest.err then left = left + #rest end
      end
      if left == 0 then redis.call('SREM', consumers, name) end
    end
  end
end
-- Trim what every reader is done with: entries older than the oldest pending one (or, with
-- nothing pending, up to the last delivered one) are acknowledged. XTRIM, unlike XDEL, keeps the
-- group's lag exact.
for _, s in ipairs(streams) do
  local st = group_state(s[2])
  if st and st.last ~= '0-0' then
    local summary = redis.call('XPENDING', s[2], GROUP)
    local floor = summary[2]
    if tonumber(summary[1]) == 0 then
      local ms, seq = string.match(st.last, '^(%d+)-(%d+)$')
      floor = ms .. '-' .. string.format('%.0f', tonumber(seq) + 1)
    end
    redis.call('XTRIM', s[2], 'MINID', '~', floor)
  end
end
return cjson.encode({ token, out })
`;

/**
 * expire: ARGV base, job id, controls hash, takeover token, then per entry: receipt, action, n,
 * and n values:
 * - `requeue` (attempts, crashes, history): back in its redo stream;
 * - `split` (per part: its field count, then its fields): the parts enter the redo streams;
 * - `dead` (kind, reason, attempts, history, at[, raw]): to the dead letters;
 * - `cancel` (no values): the chunk leaves, counted as cancelled.
 * Applies each plan only while its entry is still held under the token (a later takeover may have
 * taken it since), and counts it as reclaimed. In a cancelled job (its control read here) every
 * plan is `cancel` (policy.ts `underControl`), except that a message that is not a chunk is still
 * dead-lettered as malformed. Returns how many plans were applied.
 */
const EXPIRE = `
local base, job, token = ARGV[1], ARGV[2], ARGV[4]
local cancelled_job = control_of(ARGV[3], job) == 'cancelled'
local expiring = base .. ':expiring'
local c = { reclaimed = 0, splits = 0, malformed = 0, cancelled = 0 }
local i = 5
while i <= #ARGV do
  local receipt, action, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local v = i + 3
  i = v + n
  local held = redis.call('HGET', expiring, receipt)
  local x = held and cjson.decode(held)
  if x and x.t == token then
    redis.call('HDEL', expiring, receipt)
    local epoch = tostring(claim_epoch(x.f))
    if cancelled_job and not (action == 'dead' and ARGV[v] == 'malformed') then action = 'cancel' end
    if action == 'cancel' then
      c.cancelled = c.cancelled + 1
    elseif action == 'requeue' then
      redo(base, with_fields(x.f, {
        'attempts', ARGV[v], 'crashes', ARGV[v + 1], 'history', ARGV[v + 2], 'epoch', epoch,
      }))
    elseif action == 'split' then
      add_parts(base, ARGV, v, n, epoch)
      c.splits = c.splits + 1
    else
      if dead_letter(base, job, x.f, ARGV, v, n, epoch) then c.malformed = c.malformed + 1 end
    end
    c.reclaimed = c.reclaimed + 1
  end
end
count(base, c)
return c.reclaimed
`;

/** The reclaim scripts, by the command name they are defined under. */
export const RECLAIM_SCRIPTS = {
  ttgTakeover: script(TAKEOVER),
  ttgExpire: script(EXPIRE),
} as const;
