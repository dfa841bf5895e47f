/**
 * The Lua scripts of the Redis broker's upkeep: reclaim of expired leases, stats, results and
 * dead-letter replay, and the index of every script. Key layout and conventions:
 * redis_scripts.ts.
 *
 * @module
 */
import { HOT_SCRIPTS, script, type ScriptSource } from "./redis_scripts.ts";

/**
 * reclaim: ARGV base, job id, consumer, lease ms, max attempts, max, now (ISO), dead idle ms,
 * JSON of the connection names alive now ("" when unknown). Takes over entries idle longer than
 * the lease (XAUTOCLAIM), and entries idle longer than `dead idle ms` held by a consumer of this
 * job whose connection is gone (a killed process); acknowledges them (their holder is fenced off)
 * and puts them in the redo stream of their priority as the next attempt, or dead-letters them (kind "expired")
 * when that was the last attempt. Then trims the acknowledged entries off each task stream.
 * Returns how many were taken over.
 */
const RECLAIM = `
local base, job, consumer = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, max_attempts, max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local at, dead_idle, live_json = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local consumers = base .. ':consumers'
local streams = task_streams(base)
local total = 0
local function take_over(band, key, id, flat, reason, holder)
  local epoch = claim_epoch(flat)
  local attempt = (tonumber(field(flat, 'attempts')) or 0) + 1
  local ok, history = pcall(cjson.decode, field(flat, 'history') or '[]')
  if not ok or type(history) ~= 'table' then history = {} end
  history[#history + 1] = { attempt = attempt, kind = 'expired', reason = reason, workerId = holder, at = at }
  local hjson = cjson.encode(history)
  redis.call('XACK', key, GROUP, id)
  if attempt >= max_attempts then
    dead_letter(base, job, flat, 'expired', reason, attempt, hjson, at, nil, epoch)
  else
    redo(base, with_fields(flat, { 'attempts', tostring(attempt), 'history', hjson, 'epoch', tostring(epoch) }))
  end
  total = total + 1
end
local expired = 'Lease expired: no heartbeat for ' .. lease_ms .. ' ms'
for _, s in ipairs(streams) do
  if total >= max then break end
  local stale = redis.pcall('XPENDING', s[2], GROUP, 'IDLE', lease_ms, '-', '+', max - total)
  if type(stale) == 'table' and not stale.err and #stale > 0 then
    local holders = {}
    for _, row in ipairs(stale) do holders[row[1]] = row[2] end
    local cursor = '0-0'
    repeat
      local r = redis.call('XAUTOCLAIM', s[2], GROUP, consumer, lease_ms, cursor, 'COUNT', max - total)
      cursor = r[1]
      for _, e in ipairs(r[2]) do
        if type(e[2]) == 'table' then
          take_over(s[1], s[2], e[1], e[2], expired, holders[e[1]] or 'unknown')
        end
      end
    until cursor == '0-0' or total >= max
  end
end
if live_json ~= '' and total < max then
  local live = {}
  for _, name in ipairs(cjson.decode(live_json)) do live[name] = true end
  for _, name in ipairs(redis.call('SMEMBERS', consumers)) do
    local conn = 'ttg:' .. string.gsub(name, '[^%w%.%_%-]', '_')
    if name ~= consumer and not live[conn] then
      local left = 0
      for _, s in ipairs(streams) do
        local p = redis.pcall('XPENDING', s[2], GROUP, 'IDLE', dead_idle, '-', '+', math.max(1, max - total), name)
        if type(p) == 'table' and not p.err and #p > 0 and total < max then
          local ids = {}
          for _, row in ipairs(p) do ids[#ids + 1] = row[1] end
          local claimed = redis.call('XCLAIM', s[2], GROUP, consumer, dead_idle, unpack(ids))
          for _, e in ipairs(claimed) do
            if type(e[2]) == 'table' then
              take_over(s[1], s[2], e[1], e[2], 'Consumer "' .. name .. '" disconnected', name)
            end
          end
        end
        local rest = redis.pcall('XPENDING', s[2], GROUP, '-', '+', 1, name)
        if type(rest) == 'table' and not rest.err then left = left + #rest end
      end
      if left == 0 then redis.call('SREM', consumers, name) end
    end
  end
end
if total > 0 then redis.call('HINCRBY', base .. ':stats', 'reclaimed', total) end
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
return total
`;

/**
 * stats: ARGV base, consumer window ms, absorb limit. Returns ready, inFlight, delayed,
 * deadLettered, completed, duplicates, zombies, retried, reclaimed, consumers, and 1 when legacy
 * results remain to be absorbed.
 */
const STATS = `
local base, window, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local more = 0
if redis.call('EXISTS', base .. ':results') == 1 and absorb(base, limit) then more = 1 end
local ready, inflight, names, consumers = 0, 0, {}, 0
for _, s in ipairs(task_streams(base)) do
  local key = s[2]
  if redis.call('EXISTS', key) == 1 then
    local st = group_state(key)
    if not st then
      ready = ready + redis.call('XLEN', key)
    else
      inflight = inflight + st.pending
      if st.lag then ready = ready + st.lag
      else ready = ready + #redis.call('XRANGE', key, '(' .. st.last, '+') end
      for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', key, GROUP)) do
        local name, idle
        for j = 1, #c, 2 do
          if c[j] == 'name' then name = c[j + 1] elseif c[j] == 'idle' then idle = c[j + 1] end
        end
        if name and idle and idle <= window and not names[name] then
          names[name] = true
          consumers = consumers + 1
        end
      end
    end
  end
end
local c = redis.call('HMGET', base .. ':stats', 'duplicates', 'zombies', 'retried', 'reclaimed')
return {
  ready, inflight, redis.call('ZCARD', base .. ':delayed'), redis.call('XLEN', base .. ':dlq'),
  redis.call('HLEN', base .. ':done'), tonumber(c[1]) or 0, tonumber(c[2]) or 0,
  tonumber(c[3]) or 0, tonumber(c[4]) or 0, consumers, more,
}
`;

/**
 * results: ARGV base, start (exclusive; "" from the beginning), limit. Returns JSON
 * [last entry id read, [[fields]…] of the counted results among them].
 */
const RESULTS = `
local base, start, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local done = base .. ':done'
local from = '-'
if start ~= '' then from = '(' .. start end
local rows = redis.call('XRANGE', base .. ':results', from, '+', 'COUNT', limit)
local out, last = {}, ''
for _, row in ipairs(rows) do
  last = row[1]
  -- Ours are written only for the counted ack; a legacy worker's when the chunk names it.
  if field(row[2], 'ttg') or redis.call('HGET', done, field(row[2], 'chunk_id') or '') == row[1] then
    out[#out + 1] = row[2]
  end
end
return cjson.encode({ last, out })
`;

/** absorb: ARGV base, limit. Counts legacy results; returns 1 when more remain. */
const ABSORB = `
if absorb(ARGV[1], tonumber(ARGV[2])) then return 1 end
return 0
`;

/**
 * replay: ARGV base, then dead-letter ids. Puts each dead letter that holds a task back in its
 * priority band with fresh attempts; returns how many.
 */
const REPLAY = `
local base = ARGV[1]
local dlq = base .. ':dlq'
local n = 0
for i = 2, #ARGV do
  local rows = redis.call('XRANGE', dlq, ARGV[i], ARGV[i])
  if #rows == 1 and field(rows[1][2], 'kind') ~= 'malformed' then
    local ok, flat = pcall(cjson.decode, field(rows[1][2], 'fields') or '')
    if ok and type(flat) == 'table' and #flat > 0 then
      local band = tostring(priority_of(flat))
      add_to(stream_of(base, band), with_fields(flat, { 'attempts', '0', 'history', '[]' }))
      if band ~= '0' then redis.call('SADD', base .. ':bands', band) end
      redis.call('XDEL', dlq, ARGV[i])
      n = n + 1
    end
  end
end
return n
`;

/** The upkeep scripts, by the command name they are defined under. */
export const UPKEEP_SCRIPTS = {
  ttgReclaim: script(RECLAIM),
  ttgStats: script(STATS),
  ttgAbsorb: script(ABSORB),
  ttgResults: script(RESULTS),
  ttgReplay: script(REPLAY),
} as const;

/** Every script of the broker, by the command name it is defined under. */
export const SCRIPTS: Readonly<Record<ScriptName, ScriptSource>> = {
  ...HOT_SCRIPTS,
  ...UPKEEP_SCRIPTS,
};

/** Name of a broker script. */
export type ScriptName = keyof typeof HOT_SCRIPTS | keyof typeof UPKEEP_SCRIPTS;
