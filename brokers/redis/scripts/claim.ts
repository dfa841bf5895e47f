/**
 * The Lua scripts of the Redis broker's intake: publish, claim (due retries, priority bands with
 * aging, XREADGROUP … COUNT; nothing of a paused or cancelled job) and giveback (what a blocking
 * read claimed beyond a pull's max, or in a job paused or cancelled meanwhile). Key layout and
 * conventions: prelude.ts.
 *
 * @module
 */
import { script } from "./prelude.ts";

/**
 * publish: ARGV base, band, JSON of the fields every task shares, JSON [[chunk id, start, end,
 * params count], …]. Creates the band's consumer group (at `0`, so entries written before are
 * delivered), records the band, and XADDs one entry per task with the predecessor's fields first.
 */
const PUBLISH = `
local base, band = ARGV[1], ARGV[2]
local key = stream_of(base, band)
ensure_group(key)
redis.call('SADD', base .. ':bands', band)
local common = cjson.decode(ARGV[3])
local entry = {
  'chunk_id', '', 'start_param', '', 'end_param', '', 'params_count', '',
  'total_params', common[1], 'total_chunks', common[2], 'created_at', common[3],
  'status', 'pending', 'job_id', common[4], 'handler', common[5], 'priority', band,
  'args', common[6], 'divisible', common[7],
}
for _, t in ipairs(cjson.decode(ARGV[4])) do
  entry[2], entry[4], entry[6], entry[8] = t[1], t[2], t[3], t[4]
  redis.call('XADD', key, '*', unpack(entry))
end
return 1
`;

/**
 * claim: ARGV base, consumer, count, agingMs, controls hash, job id. In a job whose control is not
 * running (paused, cancelled) claims nothing. Else moves due retries to their redo stream, then
 * claims (XREADGROUP … COUNT) up to count entries (never more in flight than the job's cap), each time from the stream whose oldest waiting
 * entry has the highest aged priority (priority + waited / agingMs; on a tie the higher priority,
 * then redo before new), as many as beat the runner-up. Returns JSON [next retry due in ms or -1,
 * [[band, stream]…], [[band, id, fields]…], control, room left under the cap or -1] (one JSON string decodes far faster in a
 * worker than the same entries as RESP arrays).
 */
const CLAIM = `
local base, consumer = ARGV[1], ARGV[2]
local need, aging = tonumber(ARGV[3]), tonumber(ARGV[4])
local delayed = base .. ':delayed'
redis.call('SADD', base .. ':consumers', consumer)
local control = control_of(ARGV[5], ARGV[6])
if control ~= 'running' then return cjson.encode({ -1, {}, {}, control }) end
local now = now_ms()
move_due(base, now)
local streams = task_streams(base)
for _, s in ipairs(streams) do
  if redis.call('EXISTS', s[2]) == 0 then ensure_group(s[2]) end
end
-- Room under the job's cap, counted over every consumer (-1: uncapped).
local room = -1
local cap = cap_of(base)
if cap then
  room = math.max(0, cap - in_flight(base, streams))
  need = math.min(need, room)
end
local function aged(c, id) return aged_of(c.band, id, now, aging) end
local function beats(a, b)
  if a.aged ~= b.aged then return a.aged > b.aged end
  if a.band ~= b.band then return a.band > b.band end
  return a.redo and not b.redo
end
local function candidate(s) return head_of(s, now, aging) end
local claimed, left = {}, need
for _ = 1, 4 do
  if left <= 0 then break end
  local best, second = nil, nil
  for _, s in ipairs(streams) do
    local c = candidate(s)
    if c then
      if not best or beats(c, best) then
        second = best; best = c
      elseif not second or beats(c, second) then
        second = c
      end
    end
  end
  if not best then break end
  local count = left
  if best.lag then count = math.min(count, best.lag) end
  if second then
    local rows = redis.call('XRANGE', best.key, '(' .. best.last, '+', 'COUNT', count)
    local k = 0
    for _, row in ipairs(rows) do
      local e = { band = best.band, redo = best.redo, aged = aged(best, row[1]) }
      if beats(e, second) then k = k + 1 else break end
    end
    count = math.max(k, 1)
  end
  local r = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', best.key, '>')
  if type(r) == 'table' and r.err then error(r.err) end
  if not r then break end
  for _, e in ipairs(r[1][2]) do claimed[#claimed + 1] = { best.name, e[1], e[2] } end
  left = left - #r[1][2]
end
if room >= 0 then room = room - #claimed end
local next_due = -1
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - now) end
return cjson.encode({ next_due, streams, claimed, control, room })
`;

/**
 * giveback: ARGV base, controls hash, job id, keep, then the receipts of the entries a blocking
 * read claimed. While the job runs, the first `keep` stay claimed and the others go back at the
 * end of their stream (no attempt burned); in a paused job all go back, and in a cancelled job all
 * are acknowledged and counted as cancelled (the read waited since before the job's control
 * changed). Each only while it is still pending. Returns how many stay claimed.
 */
const GIVEBACK = `
local base, job = ARGV[1], ARGV[3]
local control = control_of(ARGV[2], job)
local keep = tonumber(ARGV[4])
if control ~= 'running' then keep = 0 end
local cap = cap_of(base)
if cap then
  -- The read entries are pending already: the room is what the others left.
  local others = in_flight(base, task_streams(base)) - (#ARGV - 4)
  keep = math.min(keep, math.max(0, cap - others))
end
local cancelled = 0
for i = 5 + keep, #ARGV do
  local key, id = parse_receipt(base, ARGV[i])
  if key then
    local rows = redis.call('XRANGE', key, id, id)
    -- One a reclaim took over meanwhile is no longer pending: its plan puts it back.
    if redis.call('XACK', key, GROUP, id) == 1 and #rows == 1 then
      if control == 'cancelled' then
        cancelled = cancelled + 1
      else
        redis.call('XADD', key, '*', unpack(rows[1][2]))
      end
    end
  end
end
count(base, { cancelled = cancelled })
return math.min(keep, #ARGV - 4)
`;

/**
 * heads: ARGV agingMs, max, then per job its base, controls hash and id. Moves each job's due
 * retries, then returns JSON [[aged priority of its best ready chunk or -1 (none, or not
 * running), ready counted up to max, in flight, cap or -1]…], for share.ts to split a pull
 * across the jobs.
 */
const HEADS = `
local aging, max = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local out = {}
for i = 3, #ARGV, 3 do
  local base = ARGV[i]
  move_due(base, now)
  local streams = task_streams(base)
  local best, ready = -1, 0
  if control_of(ARGV[i + 1], ARGV[i + 2]) == 'running' then
    for _, s in ipairs(streams) do
      local c = head_of(s, now, aging)
      if c then
        if c.aged > best then best = c.aged end
        if ready < max then
          if c.lag then ready = ready + c.lag
          else ready = ready + #redis.call('XRANGE', c.key, '(' .. c.last, '+', 'COUNT', max) end
        end
      end
    end
  end
  out[#out + 1] = { best, math.min(ready, max), in_flight(base, streams), cap_of(base) or -1 }
end
return cjson.encode(out)
`;

/** The intake scripts, by the command name they are defined under. */
export const CLAIM_SCRIPTS = {
  ttgPublish: script(PUBLISH),
  ttgClaim: script(CLAIM),
  ttgGiveback: script(GIVEBACK),
  ttgHeads: script(HEADS),
} as const;
