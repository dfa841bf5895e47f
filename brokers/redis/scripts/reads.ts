/**
 * The Lua scripts of the Redis broker's reads and dead-letter upkeep: stats (one snapshot),
 * results, absorbing legacy results, replay and purge. Key layout and conventions: prelude.ts.
 *
 * @module
 */
import { script } from "./prelude.ts";

/**
 * stats: ARGV base, absorb limit, JSON of the connection names alive now ("" when unknown),
 * consumer window ms (used only without connection names), controls hash, job id. Returns ready,
 * inFlight, delayed, deadLettered, malformed, completed, splits, duplicates, zombies, retried,
 * reclaimed, consumers, 1 when legacy results remain to be absorbed, completedParams, cancelled,
 * the job's control, and [priority, age ms, …] of the oldest ready entry of each band that has
 * one, lowest priority first (its age read off its entry id: the time it entered its stream).
 * Consumers are the job's consumers whose connection is open; without connection names, those
 * that read within the window.
 */
const STATS = `
local base, limit, live_json, window = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local more = 0
if redis.call('EXISTS', base .. ':results') == 1 and absorb(base, limit) then more = 1 end
local now = now_ms()
local ready, inflight, seen, oldest = 0, 0, {}, {}
for _, s in ipairs(task_streams(base)) do
  local key = s[2]
  if redis.call('EXISTS', key) == 1 then
    local st = group_state(key)
    local head
    if not st then
      ready = ready + redis.call('XLEN', key)
      head = redis.call('XRANGE', key, '-', '+', 'COUNT', 1)[1]
    else
      inflight = inflight + st.pending
      if st.lag then ready = ready + st.lag
      else ready = ready + #redis.call('XRANGE', key, '(' .. st.last, '+') end
      if st.lag ~= 0 then head = redis.call('XRANGE', key, '(' .. st.last, '+', 'COUNT', 1)[1] end
      if live_json == '' then
        for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', key, GROUP)) do
          local name, idle
          for j = 1, #c, 2 do
            if c[j] == 'name' then name = c[j + 1] elseif c[j] == 'idle' then idle = c[j + 1] end
          end
          if name and idle and idle <= window then seen[name] = true end
        end
      end
    end
    if head then
      local band = tonumber(string.match(s[1], '%d+'))
      local ms = id_ms(head[1])
      if not oldest[band] or ms < oldest[band] then oldest[band] = ms end
    end
  end
end
inflight = inflight + redis.call('HLEN', base .. ':expiring') -- taken over, plans to apply
local consumers = 0
if live_json ~= '' then
  local live = {}
  for _, name in ipairs(cjson.decode(live_json)) do live[name] = true end
  for _, name in ipairs(redis.call('SMEMBERS', base .. ':consumers')) do
    if live['ttg:' .. string.gsub(name, '[^%w%.%_%-]', '_')] then consumers = consumers + 1 end
  end
else
  for _ in pairs(seen) do consumers = consumers + 1 end
end
local ages = {}
for band = 0, 10 do
  if oldest[band] then
    ages[#ages + 1] = band
    ages[#ages + 1] = math.max(0, now - oldest[band])
  end
end
local c = redis.call('HMGET', base .. ':stats', 'malformed', 'splits', 'duplicates', 'zombies',
  'retried', 'reclaimed', 'params', 'cancelled')
return {
  ready, inflight, redis.call('ZCARD', base .. ':delayed'), redis.call('XLEN', base .. ':dlq'),
  tonumber(c[1]) or 0, redis.call('HLEN', base .. ':done'), tonumber(c[2]) or 0,
  tonumber(c[3]) or 0, tonumber(c[4]) or 0, tonumber(c[5]) or 0, tonumber(c[6]) or 0,
  consumers, more, tonumber(c[7]) or 0, tonumber(c[8]) or 0, control_of(ARGV[5], ARGV[6]), ages,
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
-- A short page is the last one: no cursor, so the reader stops without another call.
if #rows < limit then last = '' end
return cjson.encode({ last, out })
`;

/** absorb: ARGV base, limit. Counts legacy results; returns 1 when more remain. */
const ABSORB = `
if absorb(ARGV[1], tonumber(ARGV[2])) then return 1 end
return 0
`;

/**
 * replay: ARGV base, then dead-letter ids. Puts each dead letter that holds a task back in its
 * priority band with fresh attempts and crashes (its epoch kept, so claims keep growing); returns
 * how many.
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
      local fresh = { 'attempts', '0', 'crashes', '0', 'history', '[]' }
      add_to(stream_of(base, band), with_fields(flat, fresh))
      if band ~= '0' then redis.call('SADD', base .. ':bands', band) end
      redis.call('XDEL', dlq, ARGV[i])
      n = n + 1
    end
  end
end
return n
`;

/**
 * purge: ARGV base, then dead-letter ids, or none for all of the job's. Deletes them and keeps the
 * count of malformed letters right; returns how many were deleted.
 */
const PURGE = `
local base = ARGV[1]
local dlq, stats = base .. ':dlq', base .. ':stats'
if #ARGV == 1 then
  local n = redis.call('XLEN', dlq)
  redis.call('DEL', dlq)
  redis.call('HDEL', stats, 'malformed')
  return n
end
local n, malformed = 0, 0
for i = 2, #ARGV do
  local rows = redis.call('XRANGE', dlq, ARGV[i], ARGV[i])
  if #rows == 1 then
    if field(rows[1][2], 'kind') == 'malformed' then malformed = malformed + 1 end
    n = n + redis.call('XDEL', dlq, ARGV[i])
  end
end
if malformed > 0 then redis.call('HINCRBY', stats, 'malformed', -malformed) end
return n
`;

/** The read scripts, by the command name they are defined under. */
export const READ_SCRIPTS = {
  ttgStats: script(STATS),
  ttgAbsorb: script(ABSORB),
  ttgResults: script(RESULTS),
  ttgReplay: script(REPLAY),
  ttgPurge: script(PURGE),
} as const;
