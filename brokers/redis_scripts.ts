/**
 * The Lua scripts of the Redis broker's hot path (publish, claim, ack, nack, extend) and the
 * helpers every script shares. Each broker step that must be atomic is one script, so it costs one
 * round trip per batch. Scripts derive a job's key names from its key base (see redis_codec.ts):
 *
 * | key | type | holds |
 * | --- | --- | --- |
 * | `B:tasks` | stream | priority-0 tasks (the predecessor's `ttg:tasks`) |
 * | `B:tasks.p<N>` | stream | priority-N tasks, N = 1..10 |
 * | `B:redo`, `B:redo.p<N>` | stream | priority-0 (N) tasks coming back: reclaimed, released, retried, split; pulled before new tasks of the same priority |
 * | `B:results` | stream | one legacy-format entry per counted result (the predecessor's `ttg:results`) |
 * | `B:done` | hash | chunk id → ` <receipt> <epoch>` of the ack that counted it, or the entry id of a legacy worker's result |
 * | `B:delayed` | zset | retries (entry fields as JSON) by due time |
 * | `B:dlq` | stream | dead letters |
 * | `B:stats` | hash | counters, and `cursor`: the last results entry absorbed |
 * | `B:bands` | set | priority bands in use |
 * | `B:consumers` | set | consumers that claimed tasks of the job (for dead-connection reclaim) |
 * | `B:job` | string | the job record (JSON) |
 *
 * Every task stream has the consumer group `ttg-workers`. A receipt is `<band>:<entry id>`, band
 * `N` for `tasks` streams and `rN` for `redo` streams. A claim is a delivery of an entry to one consumer through `>`, so it
 * happens once per entry; its fencing epoch is the entry's `epoch` field + 1, and an entry that is
 * put back (retry, release, reclaim) carries the epoch of its last claim. A claim is current while
 * the entry is pending (nack and extend also check it is pending for their consumer): reclaiming
 * acknowledges the old entry, so a zombie's ack, nack or extend finds nothing pending and is
 * rejected. Times come from the Redis clock (`TIME`).
 *
 * @module
 */

/** Helpers shared by every script (prepended to each). */
export const PRELUDE = `
local GROUP = 'ttg-workers'
local function stream_of(base, band)
  local redo, n = string.match(band, '^(r?)(%d+)$')
  local name = (redo == 'r') and 'redo' or 'tasks'
  if n == '0' then return base .. ':' .. name end
  return base .. ':' .. name .. '.p' .. n
end
local function split_receipt(receipt)
  return string.match(receipt, '^([^:]+):(.+)$')
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function id_ms(id)
  return tonumber(string.match(id, '^(%d+)'))
end
local function field(flat, name)
  for i = 1, #flat, 2 do
    if flat[i] == name then return flat[i + 1] end
  end
  return nil
end
-- The epoch of the claim of an entry: its carried epoch + 1.
local function claim_epoch(flat)
  return (tonumber(field(flat, 'epoch')) or 0) + 1
end
-- True while the entry is pending for this consumer (the claim is current).
local function owned(key, id, consumer)
  local p = redis.pcall('XPENDING', key, GROUP, id, id, 1, consumer)
  return type(p) == 'table' and not p.err and #p == 1
end
-- Copies a flat field list, replacing or appending the pairs of the flat list over.
local function with_fields(flat, over)
  local out, pos = {}, {}
  for i = 1, #flat, 2 do
    out[#out + 1] = flat[i]
    out[#out + 1] = flat[i + 1]
    pos[flat[i]] = #out
  end
  for i = 1, #over, 2 do
    local at = pos[over[i]]
    if at then
      out[at] = over[i + 1]
    else
      out[#out + 1] = over[i]
      out[#out + 1] = over[i + 1]
      pos[over[i]] = #out
    end
  end
  return out
end
local function ensure_group(key)
  redis.pcall('XGROUP', 'CREATE', key, GROUP, '0', 'MKSTREAM')
end
local function add_to(key, flat)
  ensure_group(key)
  return redis.call('XADD', key, '*', unpack(flat))
end
-- Priority of an entry (0 for the predecessor's entries and for nonsense).
local function priority_of(flat)
  local p = tonumber(field(flat, 'priority')) or 0
  if p < 0 or p > 10 or p ~= math.floor(p) then return 0 end
  return p
end
-- Puts an entry back in the redo stream of its priority.
local function redo(base, flat)
  local p = priority_of(flat)
  if p ~= 0 then redis.call('SADD', base .. ':bands', tostring(p)) end
  return add_to(stream_of(base, 'r' .. p), flat)
end
-- The task streams of a job, highest priority first, redo before tasks: { band, key }.
local function task_streams(base)
  local bands = redis.call('SMEMBERS', base .. ':bands')
  local seen, nums = { [0] = true }, { 0 }
  for _, b in ipairs(bands) do
    local n = tonumber(b)
    if n and not seen[n] then seen[n] = true; nums[#nums + 1] = n end
  end
  table.sort(nums, function(a, b) return a > b end)
  local out = {}
  for _, n in ipairs(nums) do
    out[#out + 1] = { 'r' .. n, stream_of(base, 'r' .. n) }
    out[#out + 1] = { tostring(n), stream_of(base, tostring(n)) }
  end
  return out
end
-- Our group's state on a stream: last delivered id, lag (false if unknown), pending; nil if none.
local function group_state(key)
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) ~= 'table' or groups.err then return nil end
  for _, g in ipairs(groups) do
    local name, last, lag, pending
    for j = 1, #g, 2 do
      local k = g[j]
      if k == 'name' then name = g[j + 1]
      elseif k == 'last-delivered-id' then last = g[j + 1]
      elseif k == 'lag' then lag = g[j + 1]
      elseif k == 'pending' then pending = g[j + 1] end
    end
    if name == GROUP then return { last = last, lag = lag, pending = pending } end
  end
  return nil
end
-- Appends a dead letter built from an entry's fields.
local function dead_letter(base, job, flat, kind, reason, attempts, history, at, raw, epoch)
  local entry = {
    'job_id', job, 'chunk_id', field(flat, 'chunk_id') or '', 'kind', kind, 'reason', reason,
    'attempts', tostring(attempts), 'history', history, 'at', at,
    'fields', cjson.encode(with_fields(flat, { 'epoch', tostring(epoch) })),
  }
  if raw and raw ~= '' then entry[#entry + 1] = 'raw'; entry[#entry + 1] = raw end
  return redis.call('XADD', base .. ':dlq', '*', unpack(entry))
end
-- Counts results of legacy workers: entries of the results stream after the cursor that we did
-- not write. The first result of a chunk is counted; later ones are duplicates.
local function absorb(base, limit)
  local stats, done = base .. ':stats', base .. ':done'
  local cursor = redis.call('HGET', stats, 'cursor') or '0-0'
  local rows = redis.call('XRANGE', base .. ':results', '(' .. cursor, '+', 'COUNT', limit)
  local dups = 0
  for _, row in ipairs(rows) do
    local flat = row[2]
    if not field(flat, 'ttg') then
      local chunk, status = field(flat, 'chunk_id'), field(flat, 'status')
      if chunk and chunk ~= '' and (not status or status == 'completed' or status == 'complete') then
        if redis.call('HSETNX', done, chunk, row[1]) == 0 then dups = dups + 1 end
      end
    end
  end
  if #rows > 0 then redis.call('HSET', stats, 'cursor', rows[#rows][1]) end
  if dups > 0 then redis.call('HINCRBY', stats, 'duplicates', dups) end
  return #rows >= limit
end
`;

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
 * claim: ARGV base, consumer, count, agingMs. Moves due retries to their redo stream, then claims
 * (XREADGROUP … COUNT) up to count entries, each time from the stream whose oldest waiting entry
 * has the highest aged priority (priority + waited / agingMs; on a tie the higher priority, then
 * redo before new), as many as beat the runner-up. Returns JSON [next retry due in ms or -1,
 * [[band, stream]…], [[band, id, fields]…]] (one JSON string decodes far faster in a worker than
 * the same entries as RESP arrays).
 */
const CLAIM = `
local base, consumer = ARGV[1], ARGV[2]
local need, aging = tonumber(ARGV[3]), tonumber(ARGV[4])
local delayed = base .. ':delayed'
local now = now_ms()
redis.call('SADD', base .. ':consumers', consumer)
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(due) do
  redo(base, cjson.decode(member))
  redis.call('ZREM', delayed, member)
end
local streams = task_streams(base)
for _, s in ipairs(streams) do
  if redis.call('EXISTS', s[2]) == 0 then ensure_group(s[2]) end
end
local function aged(c, id) return c.band + math.floor(math.max(0, now - id_ms(id)) / aging) end
local function beats(a, b)
  if a.aged ~= b.aged then return a.aged > b.aged end
  if a.band ~= b.band then return a.band > b.band end
  return a.redo and not b.redo
end
-- The stream's head (oldest undelivered entry) as a candidate, or nil.
local function candidate(s)
  local st = group_state(s[2])
  if not st then
    ensure_group(s[2])
    st = { last = '0-0', lag = false }
  end
  if st.lag == 0 then return nil end
  local h = redis.call('XRANGE', s[2], '(' .. st.last, '+', 'COUNT', 1)
  if #h == 0 then return nil end
  local c = { name = s[1], key = s[2], last = st.last, lag = st.lag }
  c.redo = string.sub(s[1], 1, 1) == 'r'
  c.band = tonumber(string.match(s[1], '%d+'))
  c.aged = aged(c, h[1][1])
  return c
end
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
local next_due = -1
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - now) end
return cjson.encode({ next_due, streams, claimed })
`;

/**
 * giveback: ARGV base, receipts. Puts entries a blocking read claimed beyond a pull's max back at
 * the end of their stream (no attempt burned).
 */
const GIVEBACK = `
local base = ARGV[1]
for i = 2, #ARGV do
  local band, id = split_receipt(ARGV[i])
  local key = stream_of(base, band)
  local rows = redis.call('XRANGE', key, id, id)
  -- Only an entry still pending goes back: one a reclaim took over meanwhile is already re-queued.
  if redis.call('XACK', key, GROUP, id) == 1 and #rows == 1 then
    redis.call('XADD', key, '*', unpack(rows[1][2]))
  end
end
return 1
`;

/**
 * ack: ARGV base, JSON [[receipt, epoch, chunk id, worker id, duration seconds,
 * completed at, result JSON, params], …] (all strings). An ack is current when it acknowledges a
 * pending entry (XACK returns 1): reclaim acknowledges the entries it takes over, so a zombie's
 * ack acknowledges nothing. Returns one letter per request: s(tored), d(uplicate), z(ombie).
 */
const ACK = `
local base = ARGV[1]
local done, results, stats = base .. ':done', base .. ':results', base .. ':stats'
local function caught_up()
  local tail = redis.call('XREVRANGE', results, '+', '-', 'COUNT', 1)
  local cursor = redis.call('HGET', stats, 'cursor') or '0-0'
  if #tail == 0 then return true end
  return tail[1][1] == cursor
end
local caught = caught_up()
if not caught then
  absorb(base, 1000)
  caught = caught_up()
end
local out = {}
local zombies, dups, last = 0, 0, nil
for _, q in ipairs(cjson.decode(ARGV[2])) do
  local receipt, epoch, chunk = q[1], q[2], q[3]
  local band, id = split_receipt(receipt)
  local mark = ' ' .. receipt .. ' ' .. epoch
  -- The claim is current while its entry is pending: a reclaim acknowledges the entry it takes.
  if redis.call('XACK', stream_of(base, band), GROUP, id) == 0 then
    local d = redis.call('HGET', done, chunk)
    if d == mark then
      out[#out + 1] = 's' -- this ack already ran (a resend after a dropped connection)
    else
      zombies = zombies + 1
      out[#out + 1] = 'z'
    end
  else
    if redis.call('HSETNX', done, chunk, mark) == 0 then
      dups = dups + 1
      out[#out + 1] = 'd'
    else
      last = redis.call('XADD', results, '*', 'chunk_id', chunk, 'worker_id', q[4],
        'status', 'completed', 'duration_seconds', q[5], 'completed_at', q[6],
        'result_data', q[7], 'params', q[8], 'ttg', '1')
      out[#out + 1] = 's'
    end
  end
end
if caught and last then redis.call('HSET', stats, 'cursor', last) end
if zombies > 0 then redis.call('HINCRBY', stats, 'zombies', zombies) end
if dups > 0 then redis.call('HINCRBY', stats, 'duplicates', dups) end
return table.concat(out)
`;

/**
 * nack: ARGV base, job id, consumer, then 6 values per request: receipt, epoch, action, attempts
 * to write, history JSON to write, extra. Actions: release | retry (extra: delay ms) | dead
 * (extra: JSON { kind, reason, at, raw }) | split (extra: JSON array of field lists). Returns one
 * letter per request: l(released), r(etrying), d(ead-lettered), s(plit), z(ombie).
 */
const NACK = `
local base, job, consumer = ARGV[1], ARGV[2], ARGV[3]
local stats = base .. ':stats'
local out = {}
local zombies, retried = 0, 0
local now = nil
-- Decode every extra before the first write: a script that fails midway keeps what it wrote, and
-- an entry acked without its dead letter or split would be lost.
local decoded = {}
for i = 4, #ARGV, 6 do
  if ARGV[i + 2] == 'split' or ARGV[i + 2] == 'dead' then decoded[i] = cjson.decode(ARGV[i + 5]) end
end
for i = 4, #ARGV, 6 do
  local receipt, epoch, action = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local attempts, history, extra = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local band, id = split_receipt(receipt)
  local key = stream_of(base, band)
  local rows = {}
  if owned(key, id, consumer) then rows = redis.call('XRANGE', key, id, id) end
  if #rows == 0 or claim_epoch(rows[1][2]) ~= tonumber(epoch) then
    zombies = zombies + 1
    out[#out + 1] = 'z'
  else
    redis.call('XACK', key, GROUP, id)
    local flat = with_fields(rows[1][2], { 'attempts', attempts, 'history', history, 'epoch', epoch })
    if action == 'release' then
      redo(base, flat)
      out[#out + 1] = 'l'
    elseif action == 'retry' then
      if not now then now = now_ms() end
      redis.call('ZADD', base .. ':delayed', now + tonumber(extra), cjson.encode(flat))
      retried = retried + 1
      out[#out + 1] = 'r'
    elseif action == 'split' then
      for _, part in ipairs(decoded[i]) do
        redo(base, with_fields(part, { 'epoch', epoch }))
      end
      out[#out + 1] = 's'
    else
      local x = decoded[i]
      dead_letter(base, job, rows[1][2], x.kind, x.reason, attempts, history, x.at, x.raw, epoch)
      out[#out + 1] = 'd'
    end
  end
end
if zombies > 0 then redis.call('HINCRBY', stats, 'zombies', zombies) end
if retried > 0 then redis.call('HINCRBY', stats, 'retried', retried) end
return table.concat(out)
`;

/**
 * extend: ARGV base, consumer, then receipt, epoch pairs. Resets the idle time of each entry still
 * pending for this consumer (XCLAIM … JUSTID to itself). Returns e(xtended) or z(ombie) per
 * delivery.
 */
const EXTEND = `
local base, consumer = ARGV[1], ARGV[2]
local out, zombies = {}, 0
for i = 3, #ARGV, 2 do
  local band, id = split_receipt(ARGV[i])
  local key = stream_of(base, band)
  local ok = owned(key, id, consumer) and
    #redis.call('XCLAIM', key, GROUP, consumer, 0, id, 'JUSTID') == 1
  if ok then out[#out + 1] = 'e' else zombies = zombies + 1; out[#out + 1] = 'z' end
end
if zombies > 0 then redis.call('HINCRBY', base .. ':stats', 'zombies', zombies) end
return table.concat(out)
`;

/** A Lua script for ioredis `defineCommand`. */
export interface ScriptSource {
  /** Keys passed apart from ARGV: none (scripts derive key names from the key base). */
  readonly numberOfKeys: 0;
  /** The Lua source, shared helpers included. */
  readonly lua: string;
}

/** Prepends the shared helpers to a script body. */
export function script(body: string): ScriptSource {
  return { numberOfKeys: 0, lua: PRELUDE + body };
}

/** The hot-path scripts, by the command name they are defined under. */
export const HOT_SCRIPTS = {
  ttgPublish: script(PUBLISH),
  ttgClaim: script(CLAIM),
  ttgGiveback: script(GIVEBACK),
  ttgAck: script(ACK),
  ttgNack: script(NACK),
  ttgExtend: script(EXTEND),
} as const;

/** Consumer group of every task stream (the predecessor's name). */
export const GROUP = "ttg-workers";
