/**
 * The Lua helpers every script of the Redis broker shares, and how a script is defined. Each broker
 * step that must be atomic is one script, so it costs one round trip per batch. Scripts derive a
 * job's key names from its key base (codec.ts `jobKeyBase`):
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
 * | `B:stats` | hash | counters (`params`: parameters of the counted results), and `cursor`: the last results entry absorbed |
 * | `B:bands` | set | priority bands in use |
 * | `B:consumers` | set | consumers that claimed tasks of the job (for dead-connection reclaim and stats) |
 * | `B:expiring` | hash | receipt → JSON { t: takeover token, h: holder, c: cause, a: ms, f: fields } of entries a reclaim took over, until their plans are applied (in flight) |
 * | `B:taken` | set | receipts of claims a reclaim took over (their holder's extend is a zombie) |
 * | `B:job` | string | the job record (JSON) |
 * | `P:@<space>` | hash | the key-value store (spaces `jobs`, `controls`, `workers`; P is the key prefix): key → value |
 * | `P:@<space>:exp` | zset | key → expiry (ms) of the entries written with a time to live |
 *
 * Every task stream has the consumer group `ttg-workers`. A receipt is `<band>:<entry id>`, band
 * `N` for `tasks` streams and `rN` for `redo` streams. A claim is a delivery of an entry to one
 * consumer through `>`, so it happens once per entry; its fencing epoch is the entry's `epoch`
 * field + 1. A claim is current while its entry is pending for its consumer: whatever ends a
 * claim acknowledges the entry (ack, nack, and a takeover by reclaim, which moves the entry to
 * `B:expiring` until its plan is applied), so a superseded holder's ack, nack or extend finds
 * nothing pending. An entry that goes back (retry, release, reclaim) is added again, carrying the
 * epoch of its last claim. Times come from the Redis clock (`TIME`).
 *
 * @module
 */
import { GROUP } from "../codec.ts";

/** Helpers shared by every script (prepended to each). */
const PRELUDE = `
local GROUP = '${GROUP}'
local function stream_of(base, band)
  local redo, n = string.match(band, '^(r?)(%d+)$')
  local name = (redo == 'r') and 'redo' or 'tasks'
  if n == '0' then return base .. ':' .. name end
  return base .. ':' .. name .. '.p' .. n
end
-- The stream key and entry id of a receipt; nil for a receipt that names no entry.
local keys_of_band = {}
local function parse_receipt(base, receipt)
  local band, id = string.match(receipt, '^(r?%d+):(%d+%-%d+)$')
  if not band then return nil end
  local key = keys_of_band[band]
  if not key then
    key = stream_of(base, band)
    keys_of_band[band] = key
  end
  return key, id
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The live value of a key of the broker's key-value store, or nil: the field of its space's hash,
-- unless the space's expiry zset (hash .. ':exp') says it expired.
local function kv_live(hash, key, now)
  local v = redis.call('HGET', hash, key)
  if not v then return nil end
  local at = redis.call('ZSCORE', hash .. ':exp', key)
  if at and tonumber(at) <= now then return nil end
  return v
end
-- A job's control word, as registry.ts readControl reads it: paused or cancelled as stored,
-- anything else running. controls is the hash of the controls space; the common case (no
-- control, or running) costs one HGET.
local function control_of(controls, job)
  local v = redis.call('HGET', controls, job)
  if v ~= 'paused' and v ~= 'cancelled' then return 'running' end
  local at = redis.call('ZSCORE', controls .. ':exp', job)
  if at and tonumber(at) <= now_ms() then return 'running' end
  return v
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
-- The consumer a pending entry is pending for; nil when it is not pending.
local function holder_of(key, id)
  local p = redis.pcall('XPENDING', key, GROUP, id, id, 1)
  if type(p) ~= 'table' or p.err or #p == 0 then return nil end
  return p[1][2]
end
-- The claims of a batch of receipts: per receipt { key, id } (false when it names no entry), and
-- per stream key the set of entry ids pending for consumer (one XPENDING per stream, over the
-- consumer's own pending entries between the lowest and highest id of the batch).
local function current_claims(base, receipts, consumer)
  local targets, ranges, keys = {}, {}, {}
  for i, receipt in ipairs(receipts) do
    local key, id = parse_receipt(base, receipt)
    if key then
      local ms, seq = string.match(id, '^(%d+)-(%d+)$')
      ms, seq = tonumber(ms), tonumber(seq)
      targets[i] = { key, id }
      local r = ranges[key]
      if not r then
        ranges[key] = { id, ms, seq, id, ms, seq }
        keys[#keys + 1] = key
      else
        if ms < r[2] or (ms == r[2] and seq < r[3]) then r[1], r[2], r[3] = id, ms, seq end
        if ms > r[5] or (ms == r[5] and seq > r[6]) then r[4], r[5], r[6] = id, ms, seq end
      end
    else
      targets[i] = false
    end
  end
  local current = {}
  for _, key in ipairs(keys) do
    local set = {}
    local p = redis.pcall('XPENDING', key, GROUP, ranges[key][1], ranges[key][4], 1000000000, consumer)
    if type(p) == 'table' and not p.err then
      for _, row in ipairs(p) do set[row[1]] = true end
    end
    current[key] = set
  end
  return targets, current
end
-- Runs command key GROUP [extra...] over ids of one stream, a thousand ids at a time.
local function over_ids(command, key, ids, before, after)
  for i = 1, #ids, 1000 do
    local args = { command, key, GROUP }
    for _, a in ipairs(before) do args[#args + 1] = a end
    for j = i, math.min(#ids, i + 999) do args[#args + 1] = ids[j] end
    for _, a in ipairs(after) do args[#args + 1] = a end
    redis.call(unpack(args))
  end
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
-- The job's cap on chunks in flight (its record's maxInFlight), or nil; most records have none,
-- so they are not decoded.
local function cap_of(base)
  local record = redis.call('GET', base .. ':job')
  if not record or not string.find(record, '"maxInFlight"', 1, true) then return nil end
  local ok, job = pcall(cjson.decode, record)
  if ok and type(job) == 'table' and type(job.maxInFlight) == 'number' then return job.maxInFlight end
  return nil
end
-- The job's chunks in flight over every consumer: pending in its task streams, and taken over by
-- a reclaim until their plans are applied.
local function in_flight(base, streams)
  local n = redis.call('HLEN', base .. ':expiring')
  for _, s in ipairs(streams) do
    local st = group_state(s[2])
    if st and st.pending then n = n + st.pending end
  end
  return n
end
-- Moves the job's retries that fell due to their redo streams.
local function move_due(base, now)
  local delayed = base .. ':delayed'
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
  for _, member in ipairs(due) do
    redo(base, cjson.decode(member))
    redis.call('ZREM', delayed, member)
  end
end
-- Aged priority of an entry of band \`band\` (priority + waited / agingMs).
local function aged_of(band, id, now, aging)
  return band + math.floor(math.max(0, now - id_ms(id)) / aging)
end
-- A task stream's head (its oldest undelivered entry) as a candidate for the next claim, or nil:
-- { name, key, last, lag, redo, band, aged }.
local function head_of(s, now, aging)
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
  c.aged = aged_of(c.band, h[1][1], now, aging)
  return c
end
-- Adds the parts of a split: a[v .. v+n-1] holds, per part, its field count and then its fields.
local function add_parts(base, a, v, n, epoch)
  local j, last = v, v + n - 1
  while j <= last do
    local k = tonumber(a[j])
    local part = {}
    for x = 1, k do part[x] = a[j + x] end
    part[#part + 1] = 'epoch'
    part[#part + 1] = tostring(epoch)
    redo(base, part)
    j = j + k + 1
  end
end
-- Appends the dead letter of an entry's fields, its letter in a[v .. v+n-1]: kind, reason,
-- attempts, history, at and, for a message that is not a chunk, raw. True when it is malformed.
local function dead_letter(base, job, flat, a, v, n, epoch)
  local entry = {
    'job_id', job, 'chunk_id', field(flat, 'chunk_id') or '', 'kind', a[v], 'reason', a[v + 1],
    'attempts', a[v + 2], 'history', a[v + 3], 'at', a[v + 4],
    'fields', cjson.encode(with_fields(flat, { 'epoch', tostring(epoch) })),
  }
  if n >= 6 then entry[#entry + 1] = 'raw'; entry[#entry + 1] = a[v + 5] end
  redis.call('XADD', base .. ':dlq', '*', unpack(entry))
  return a[v] == 'malformed'
end
-- Adds the counts of a table of counters to the job's stats (params by HINCRBYFLOAT: a result's
-- size is whatever its handler said, and one fraction must not wedge the counter).
local function count(base, counters)
  for name, n in pairs(counters) do
    if n ~= 0 then
      local by = (name == 'params') and 'HINCRBYFLOAT' or 'HINCRBY'
      redis.call(by, base .. ':stats', name, n)
    end
  end
end
-- Parameters a legacy worker's result covers, as legacy.ts readLegacyResult reads them: params,
-- else params_processed, else the count of its value; 0 when that is not a number.
local function legacy_params(flat)
  local p = field(flat, 'params') or field(flat, 'params_processed')
  if not p then
    local ok, value = pcall(cjson.decode, field(flat, 'result_data') or field(flat, 'result_summary') or '')
    if ok and type(value) == 'table' then p = value.count end
  end
  p = tonumber(p)
  if not p or p ~= p or p == math.huge or p == -math.huge then return 0 end
  return p
end
-- Counts results of legacy workers: entries of the results stream after the cursor that we did
-- not write. The first result of a chunk is counted (its parameters too); later ones are
-- duplicates.
local function absorb(base, limit)
  local stats, done = base .. ':stats', base .. ':done'
  local cursor = redis.call('HGET', stats, 'cursor') or '0-0'
  local rows = redis.call('XRANGE', base .. ':results', '(' .. cursor, '+', 'COUNT', limit)
  local dups, params = 0, 0
  for _, row in ipairs(rows) do
    local flat = row[2]
    if not field(flat, 'ttg') then
      local chunk, status = field(flat, 'chunk_id'), field(flat, 'status')
      if chunk and chunk ~= '' and (not status or status == 'completed' or status == 'complete') then
        if redis.call('HSETNX', done, chunk, row[1]) == 0 then
          dups = dups + 1
        else
          params = params + legacy_params(flat)
        end
      end
    end
  end
  if #rows > 0 then redis.call('HSET', stats, 'cursor', rows[#rows][1]) end
  count(base, { duplicates = dups, params = params })
  return #rows >= limit
end
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
