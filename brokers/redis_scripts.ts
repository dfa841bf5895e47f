/**
 * The Lua scripts of the Redis broker: each broker step that touches several keys (claim a batch,
 * ack + store results, nack, extend, reclaim, stats) is one script, so it is atomic and costs one
 * round trip per batch. Scripts derive a job's key names from its key base (see redis_codec.ts):
 *
 * | key | type | holds |
 * | --- | --- | --- |
 * | `B:tasks` | stream | priority-0 tasks (the predecessor's `ttg:tasks`) |
 * | `B:tasks.p<N>` | stream | priority-N tasks, N = 1..10 |
 * | `B:redo` | stream | reclaimed, released, retried and split tasks: pulled before any band |
 * | `B:results` | stream | one legacy-format entry per counted result (the predecessor's `ttg:results`) |
 * | `B:done` | hash | chunk id → `<results entry id> <receipt> <epoch>`: the counted result |
 * | `B:leases` | hash | receipt → `<epoch>\|<consumer>` of the current claim |
 * | `B:delayed` | zset | retries (entry fields as JSON) by due time |
 * | `B:dlq` | stream | dead letters |
 * | `B:stats` | hash | counters, and `cursor`: the last results entry absorbed |
 * | `B:bands` | set | priority bands in use |
 * | `B:consumers` | set | consumers that claimed tasks of the job (for dead-connection reclaim) |
 * | `B:job` | string | the job record (JSON) |
 *
 * Every task stream has the consumer group `ttg-workers`. A receipt is `<band>:<entry id>`, band
 * `r` for the redo stream. Times come from the Redis clock (`TIME`), so workers' clocks may
 * differ.
 *
 * @module
 */

/** Helpers shared by every script (prepended to each). */
const PRELUDE = `
local GROUP = 'ttg-workers'
local function stream_of(base, band)
  if band == 'r' then return base .. ':redo' end
  if band == '0' then return base .. ':tasks' end
  return base .. ':tasks.p' .. band
end
local function split_receipt(receipt)
  return string.match(receipt, '^([^:]+):(.+)$')
end
local function lease_epoch(v)
  if not v then return nil end
  return tonumber(string.match(v, '^(%d+)'))
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
-- Reads up to count new entries for consumer; recreates a missing group once.
local function read_group(key, consumer, count)
  local r = redis.pcall('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', key, '>')
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'NOGROUP', 1, true) then
      ensure_group(key)
      r = redis.call('XREADGROUP', 'GROUP', GROUP, consumer, 'COUNT', count, 'STREAMS', key, '>')
    else
      error(r.err)
    end
  end
  if not r then return {} end
  return r[1][2]
end
-- The task streams of a job: redo first, then bands from highest to lowest.
local function task_streams(base)
  local bands = redis.call('SMEMBERS', base .. ':bands')
  local seen, nums = { [0] = true }, { 0 }
  for _, b in ipairs(bands) do
    local n = tonumber(b)
    if n and not seen[n] then seen[n] = true; nums[#nums + 1] = n end
  end
  table.sort(nums, function(a, b) return a > b end)
  local out = { { 'r', base .. ':redo' } }
  for _, n in ipairs(nums) do out[#out + 1] = { tostring(n), stream_of(base, tostring(n)) } end
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
 * publish: ARGV base, JSON [[band, [field, value, …]], …]. Bands are written in the given order
 * (highest first), so a consumer blocked on several streams is woken by the highest band.
 */
const PUBLISH = `
local base = ARGV[1]
local seen = {}
for _, t in ipairs(cjson.decode(ARGV[2])) do
  local band = t[1]
  local key = stream_of(base, band)
  if not seen[band] then
    seen[band] = true
    ensure_group(key)
    if band ~= 'r' then redis.call('SADD', base .. ':bands', band) end
  end
  redis.call('XADD', key, '*', unpack(t[2]))
end
return 1
`;

/**
 * claim: ARGV base, consumer, count, agingMs. Moves due retries to the redo stream, then claims
 * up to count entries: redo first, then the band whose oldest waiting entry has the highest aged
 * priority (priority + waited / agingMs). Each claim gets a new epoch.
 * Returns JSON [next retry due in ms or -1, [[band, stream]…], [[receipt, epoch, fields]…]].
 */
const CLAIM = `
local base, consumer = ARGV[1], ARGV[2]
local need, aging = tonumber(ARGV[3]), tonumber(ARGV[4])
local leases, delayed, redo = base .. ':leases', base .. ':delayed', base .. ':redo'
local now = now_ms()
redis.call('SADD', base .. ':consumers', consumer)
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)
for _, member in ipairs(due) do
  add_to(redo, cjson.decode(member))
  redis.call('ZREM', delayed, member)
end
local out = {}
local function take(band, key, count)
  local entries = read_group(key, consumer, count)
  for _, e in ipairs(entries) do
    local receipt = band .. ':' .. e[1]
    local epoch = (tonumber(field(e[2], 'epoch')) or 0) + 1
    redis.call('HSET', leases, receipt, epoch .. '|' .. consumer)
    out[#out + 1] = { receipt, epoch, e[2] }
  end
  return #entries
end
local function head(band, key)
  local st = group_state(key)
  if not st then
    if redis.call('EXISTS', key) == 0 then return nil end
    ensure_group(key)
    st = { last = '0-0', lag = false }
  end
  if st.lag == 0 then return nil end
  local h = redis.call('XRANGE', key, '(' .. st.last, '+', 'COUNT', 1)
  if #h == 0 then return nil end
  return { band = tonumber(band), name = band, key = key, last = st.last, ms = id_ms(h[1][1]) }
end
local function aged(s, ms) return s.band + math.floor(math.max(0, now - ms) / aging) end
local function beats(a, aa, b, ab) return aa > ab or (aa == ab and a.band > b.band) end
local streams = task_streams(base)
for _, s in ipairs(streams) do
  if redis.call('EXISTS', s[2]) == 0 then ensure_group(s[2]) end
end
local got = take('r', redo, need)
local heads = {}
if got < need then
  for i = 2, #streams do
    local h = head(streams[i][1], streams[i][2])
    if h then heads[#heads + 1] = h end
  end
end
while got < need and #heads > 0 do
  local best, second = nil, nil
  for _, h in ipairs(heads) do
    h.aged = aged(h, h.ms)
    if not best or beats(h, h.aged, best, best.aged) then
      second = best; best = h
    elseif not second or beats(h, h.aged, second, second.aged) then
      second = h
    end
  end
  local count = need - got
  if second then
    local rows = redis.call('XRANGE', best.key, '(' .. best.last, '+', 'COUNT', count)
    local k = 0
    for _, row in ipairs(rows) do
      if beats(best, aged(best, id_ms(row[1])), second, second.aged) then k = k + 1 else break end
    end
    count = math.max(k, 1)
  end
  local n = take(best.name, best.key, count)
  got = got + n
  local fresh = nil
  if n > 0 then fresh = head(best.name, best.key) end
  local rest = {}
  for _, h in ipairs(heads) do
    if h ~= best then rest[#rest + 1] = h elseif fresh then rest[#rest + 1] = fresh end
  end
  heads = rest
end
local next_due = -1
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if #first > 0 then next_due = math.max(0, tonumber(first[2]) - now) end
return cjson.encode({ next_due, streams, out })
`;

/**
 * adopt: ARGV base, consumer, keep, then receipts (in priority order) of entries this consumer
 * read with a blocking XREADGROUP. The first `keep` get a lease like claim; the others are put
 * back at the end of their stream (no attempt burned). Returns JSON [[receipt, epoch, fields]…].
 */
const ADOPT = `
local base, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local leases = base .. ':leases'
local out = {}
for i = 4, #ARGV do
  local receipt = ARGV[i]
  local band, id = split_receipt(receipt)
  local key = stream_of(base, band)
  local rows = redis.call('XRANGE', key, id, id)
  if #rows == 1 then
    if #out < keep then
      local epoch = (tonumber(field(rows[1][2], 'epoch')) or 0) + 1
      redis.call('HSET', leases, receipt, epoch .. '|' .. consumer)
      out[#out + 1] = { receipt, epoch, rows[1][2] }
    else
      redis.call('XACK', key, GROUP, id)
      redis.call('XADD', key, '*', unpack(rows[1][2]))
    end
  else
    redis.call('XACK', key, GROUP, id)
  end
end
return cjson.encode(out)
`;

/**
 * ack: ARGV base, JSON [[receipt, epoch, chunk id, worker id, duration seconds, completed at,
 * result JSON, params], …] (all strings). Returns one letter per request: s(tored),
 * d(uplicate), z(ombie).
 */
const ACK = `
local base = ARGV[1]
local leases, done, results, stats = base .. ':leases', base .. ':done', base .. ':results', base .. ':stats'
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
local out, acks = {}, {}
local zombies, dups, last = 0, 0, nil
for _, q in ipairs(cjson.decode(ARGV[2])) do
  local receipt, epoch, chunk = q[1], q[2], q[3]
  local cur = redis.call('HGET', leases, receipt)
  local mark = ' ' .. receipt .. ' ' .. epoch
  if lease_epoch(cur) ~= tonumber(epoch) then
    local d = (not cur) and redis.call('HGET', done, chunk)
    if d and string.sub(d, -#mark) == mark then
      out[#out + 1] = 's'
    else
      zombies = zombies + 1
      out[#out + 1] = 'z'
    end
  else
    redis.call('HDEL', leases, receipt)
    local band, id = split_receipt(receipt)
    local key = stream_of(base, band)
    if not acks[key] then acks[key] = {} end
    local list = acks[key]
    list[#list + 1] = id
    if redis.call('HEXISTS', done, chunk) == 1 then
      dups = dups + 1
      out[#out + 1] = 'd'
    else
      last = redis.call('XADD', results, '*', 'chunk_id', chunk, 'worker_id', q[4],
        'status', 'completed', 'duration_seconds', q[5], 'completed_at', q[6],
        'result_data', q[7], 'params', q[8], 'ttg', '1')
      redis.call('HSET', done, chunk, last .. mark)
      out[#out + 1] = 's'
    end
  end
end
for key, ids in pairs(acks) do redis.call('XACK', key, GROUP, unpack(ids)) end
if caught and last then redis.call('HSET', stats, 'cursor', last) end
if zombies > 0 then redis.call('HINCRBY', stats, 'zombies', zombies) end
if dups > 0 then redis.call('HINCRBY', stats, 'duplicates', dups) end
return table.concat(out)
`;

/**
 * nack: ARGV base, job id, then 6 values per request: receipt, epoch, action, attempts to write,
 * history JSON to write, extra. Actions: release | retry (extra: delay ms) | dead (extra: JSON
 * { kind, reason, at, raw }) | split (extra: JSON array of field lists). Returns one letter per
 * request: l(released), r(etrying), d(ead-lettered), s(plit), z(ombie).
 */
const NACK = `
local base, job = ARGV[1], ARGV[2]
local leases, stats, redo = base .. ':leases', base .. ':stats', base .. ':redo'
local out = {}
local zombies, retried = 0, 0
local now = nil
for i = 3, #ARGV, 6 do
  local receipt, epoch, action = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local attempts, history, extra = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5]
  local cur = redis.call('HGET', leases, receipt)
  local band, id = split_receipt(receipt)
  local key = stream_of(base, band)
  local rows = {}
  if lease_epoch(cur) == tonumber(epoch) then rows = redis.call('XRANGE', key, id, id) end
  if #rows == 0 then
    zombies = zombies + 1
    out[#out + 1] = 'z'
  else
    redis.call('HDEL', leases, receipt)
    redis.call('XACK', key, GROUP, id)
    local flat = with_fields(rows[1][2], { 'attempts', attempts, 'history', history, 'epoch', epoch })
    if action == 'release' then
      add_to(redo, flat)
      out[#out + 1] = 'l'
    elseif action == 'retry' then
      if not now then now = now_ms() end
      redis.call('ZADD', base .. ':delayed', now + tonumber(extra), cjson.encode(flat))
      retried = retried + 1
      out[#out + 1] = 'r'
    elseif action == 'split' then
      for _, part in ipairs(cjson.decode(extra)) do
        add_to(redo, with_fields(part, { 'epoch', epoch }))
      end
      out[#out + 1] = 's'
    else
      local x = cjson.decode(extra)
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
 * extend: ARGV base, consumer, then receipt, epoch pairs. Resets the idle time of each entry whose
 * epoch is current (XCLAIM … JUSTID to itself). Returns e(xtended) or z(ombie) per delivery.
 */
const EXTEND = `
local base, consumer = ARGV[1], ARGV[2]
local leases = base .. ':leases'
local out, zombies = {}, 0
for i = 3, #ARGV, 2 do
  local receipt, epoch = ARGV[i], ARGV[i + 1]
  local ok = false
  if lease_epoch(redis.call('HGET', leases, receipt)) == tonumber(epoch) then
    local band, id = split_receipt(receipt)
    ok = #redis.call('XCLAIM', stream_of(base, band), GROUP, consumer, 0, id, 'JUSTID') == 1
  end
  if ok then out[#out + 1] = 'e' else zombies = zombies + 1; out[#out + 1] = 'z' end
end
if zombies > 0 then redis.call('HINCRBY', base .. ':stats', 'zombies', zombies) end
return table.concat(out)
`;

/**
 * reclaim: ARGV base, job id, consumer, lease ms, max attempts, max, now (ISO), dead idle ms,
 * JSON of the connection names alive now ("" when unknown). Takes over entries idle longer than
 * the lease (XAUTOCLAIM), and entries idle longer than `dead idle ms` held by a consumer of this
 * job whose connection is gone (a killed process), and puts them in the redo stream as the next
 * attempt, or dead-letters them (kind "expired") when that was the last attempt.
 * Returns how many were taken over.
 */
const RECLAIM = `
local base, job, consumer = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, max_attempts, max = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local at, dead_idle, live_json = ARGV[7], tonumber(ARGV[8]), ARGV[9]
local leases, redo, consumers = base .. ':leases', base .. ':redo', base .. ':consumers'
local streams = task_streams(base)
local total = 0
local function take_over(band, key, id, flat, reason, holder)
  local receipt = band .. ':' .. id
  local cur = redis.call('HGET', leases, receipt)
  local epoch = lease_epoch(cur) or tonumber(field(flat, 'epoch')) or 0
  holder = (cur and string.match(cur, '|(.*)$')) or holder
  local attempt = (tonumber(field(flat, 'attempts')) or 0) + 1
  local ok, history = pcall(cjson.decode, field(flat, 'history') or '[]')
  if not ok or type(history) ~= 'table' then history = {} end
  history[#history + 1] = { attempt = attempt, kind = 'expired', reason = reason, workerId = holder, at = at }
  local hjson = cjson.encode(history)
  redis.call('HDEL', leases, receipt)
  redis.call('XACK', key, GROUP, id)
  if attempt >= max_attempts then
    dead_letter(base, job, flat, 'expired', reason, attempt, hjson, at, nil, epoch)
  else
    add_to(redo, with_fields(flat, { 'attempts', tostring(attempt), 'history', hjson, 'epoch', tostring(epoch) }))
  end
  total = total + 1
end
local expired = 'Lease expired: no heartbeat for ' .. lease_ms .. ' ms'
for _, s in ipairs(streams) do
  local cursor = '0-0'
  while total < max do
    local r = redis.pcall('XAUTOCLAIM', s[2], GROUP, consumer, lease_ms, cursor, 'COUNT', max - total)
    if type(r) ~= 'table' or r.err then break end
    cursor = r[1]
    for _, e in ipairs(r[2]) do
      if type(e[2]) == 'table' then take_over(s[1], s[2], e[1], e[2], expired, 'unknown') end
    end
    if cursor == '0-0' then break end
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
  local d = redis.call('HGET', done, field(row[2], 'chunk_id') or '')
  if d and string.sub(d, 1, #row[1] + 1) == row[1] .. ' ' or d == row[1] then
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
      local p = tonumber(field(flat, 'priority')) or 0
      if p < 0 or p > 10 or p ~= math.floor(p) then p = 0 end
      local band = tostring(p)
      add_to(stream_of(base, band), with_fields(flat, { 'attempts', '0', 'history', '[]' }))
      if band ~= '0' then redis.call('SADD', base .. ':bands', band) end
      redis.call('XDEL', dlq, ARGV[i])
      n = n + 1
    end
  end
end
return n
`;

/** A Lua script for ioredis `defineCommand`. */
export interface ScriptSource {
  readonly numberOfKeys: 0;
  readonly lua: string;
}

function script(body: string): ScriptSource {
  return { numberOfKeys: 0, lua: PRELUDE + body };
}

/** The broker's scripts, by the command name they are defined under. */
export const SCRIPTS = {
  ttgPublish: script(PUBLISH),
  ttgClaim: script(CLAIM),
  ttgAdopt: script(ADOPT),
  ttgAck: script(ACK),
  ttgNack: script(NACK),
  ttgExtend: script(EXTEND),
  ttgReclaim: script(RECLAIM),
  ttgStats: script(STATS),
  ttgAbsorb: script(ABSORB),
  ttgResults: script(RESULTS),
  ttgReplay: script(REPLAY),
} as const;

/** Name of a broker script. */
export type ScriptName = keyof typeof SCRIPTS;

/** Consumer group of every task stream (the predecessor's name). */
export const GROUP = "ttg-workers";
