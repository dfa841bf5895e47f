/**
 * The Lua scripts of job control: cancelling a job's queued chunks, and the Redis broker's
 * key-value store (the job index, job controls and the fleet registry of registry.ts): one hash per space, `P:@<space>`, so a listing is one HGETALL and a
 * job's control one HGET inside the claim, nack, extend and expire scripts; entries with a time to
 * live also have their expiry in the zset `P:@<space>:exp` (a hash field has no expiry of its own
 * before Redis 7.4). Expired entries are never read; a put deletes up to a hundred of them. Key
 * layout and conventions: prelude.ts.
 *
 * @module
 */
import { script } from "./prelude.ts";

/** Expired entries a put deletes, at most. */
const SWEEP = 100;

/**
 * kvPut: ARGV hash, key, value, time to live in ms ("" for none), when (`always`, `absent`: only
 * when the key has no live value, `value`: only when its live value is the expected one), the
 * expected value. Returns 1 when it wrote.
 */
const KV_PUT = `
local hash, key, value, ttl, when, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local exp = hash .. ':exp'
local now = now_ms()
local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, ${SWEEP})
if #gone > 0 then
  redis.call('HDEL', hash, unpack(gone))
  redis.call('ZREM', exp, unpack(gone))
end
if when == 'absent' and kv_live(hash, key, now) then return 0 end
if when == 'value' and kv_live(hash, key, now) ~= expected then return 0 end
redis.call('HSET', hash, key, value)
if ttl == '' then
  redis.call('ZREM', exp, key)
else
  redis.call('ZADD', exp, now + tonumber(ttl), key)
end
return 1
`;

/** kvGet: ARGV hash, key. The key's live value, or nil. */
const KV_GET = `
return kv_live(ARGV[1], ARGV[2], now_ms()) or false
`;

/** kvList: ARGV hash. Every live entry, as a flat list of keys and values. */
const KV_LIST = `
local hash = ARGV[1]
local expired = {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', hash .. ':exp', '-inf', now_ms())) do
  expired[key] = true
end
local all = redis.call('HGETALL', hash)
local out = {}
for i = 1, #all, 2 do
  if not expired[all[i]] then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`;

/** kvDelete: ARGV hash, key. Deletes the key and its expiry. */
const KV_DELETE = `
redis.call('HDEL', ARGV[1], ARGV[2])
redis.call('ZREM', ARGV[1] .. ':exp', ARGV[2])
return 1
`;

/**
 * cancelQueued: ARGV base. Cancels every queued chunk of the job (its control is already
 * `cancelled`): the entries of each task stream not yet delivered to the group are skipped by
 * moving the group's last-delivered id to the stream's last entry (XGROUP SETID … ENTRIESREAD, so
 * its lag stays exact; the takeover's trim removes them later), and the delayed retries are
 * deleted. Counts them as cancelled; returns how many.
 */
const CANCEL_QUEUED = `
local base = ARGV[1]
local n = 0
for _, s in ipairs(task_streams(base)) do
  local key = s[2]
  if redis.call('EXISTS', key) == 1 then
    local st = group_state(key)
    if not st then
      ensure_group(key)
      st = group_state(key)
    end
    local waiting = st.lag
    if not waiting then waiting = #redis.call('XRANGE', key, '(' .. st.last, '+') end
    if waiting > 0 then
      local info = redis.call('XINFO', 'STREAM', key)
      local added = 0
      for j = 1, #info, 2 do
        if info[j] == 'entries-added' then added = info[j + 1] end
      end
      redis.call('XGROUP', 'SETID', key, GROUP, '$', 'ENTRIESREAD', added)
      n = n + waiting
    end
  end
end
local delayed = base .. ':delayed'
n = n + redis.call('ZCARD', delayed)
redis.call('DEL', delayed)
count(base, { cancelled = n })
return n
`;

/** The key-value and job-control scripts, by the command name they are defined under. */
export const CONTROL_SCRIPTS = {
  ttgCancelQueued: script(CANCEL_QUEUED),
  ttgKvPut: script(KV_PUT),
  ttgKvGet: script(KV_GET),
  ttgKvList: script(KV_LIST),
  ttgKvDelete: script(KV_DELETE),
} as const;
