/**
 * The Lua scripts that settle or renew claims, one per batch: ack (store results), nack (apply
 * the failure policy's plans, as the job's control has them) and extend (renew leases, telling
 * the holders of a cancelled job's chunks). Each applies a request only while its
 * claim is current (prelude.ts); extend finds the current claims of a batch with one XPENDING
 * per stream. Key layout and conventions: prelude.ts.
 *
 * @module
 */
import { script } from "./prelude.ts";

/**
 * ack: ARGV base, JSON [[receipt, epoch, chunk id, worker id, duration seconds, completed at,
 * result JSON, params], …] (all strings). A current claim's entry is acknowledged (XACK finds it
 * pending: whatever ends a claim acknowledges its entry) and its result stored as the chunk's
 * counted result, or discarded as a duplicate when the chunk has one; an ack whose claim is not
 * current is a zombie, unless it is a resend of an ack that already ran (the chunk's `done` mark
 * is its own). The parameters of the stored results are added to the `params` counter. Returns
 * one letter per request: s(tored), d(uplicate), z(ombie).
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
local zombies, dups, params, last = 0, 0, 0, nil
for _, q in ipairs(cjson.decode(ARGV[2])) do
  local key, id = parse_receipt(base, q[1])
  local mark = ' ' .. q[1] .. ' ' .. q[2]
  if not key or redis.call('XACK', key, GROUP, id) == 0 then
    if redis.call('HGET', done, q[3]) == mark then
      out[#out + 1] = 's' -- this ack already ran (a resend after a dropped connection)
    else
      zombies = zombies + 1
      out[#out + 1] = 'z'
    end
  elseif redis.call('HSETNX', done, q[3], mark) == 0 then
    dups = dups + 1
    out[#out + 1] = 'd'
  else
    last = redis.call('XADD', results, '*', 'chunk_id', q[3], 'worker_id', q[4],
      'status', 'completed', 'duration_seconds', q[5], 'completed_at', q[6],
      'result_data', q[7], 'params', q[8], 'ttg', '1')
    params = params + (tonumber(q[8]) or 0)
    out[#out + 1] = 's'
  end
end
if caught and last then redis.call('HSET', stats, 'cursor', last) end
count(base, { zombies = zombies, duplicates = dups, params = params })
return table.concat(out)
`;

/**
 * nack: ARGV base, job id, consumer, controls hash, then per request: receipt, epoch, action, n,
 * and n values:
 * - `release` (no values): back in its redo stream as it was;
 * - `retry` (attempts, history, delay ms): in the delayed set until due, with the attempts and
 *   history of the next claim;
 * - `split` (per part: its field count, then its fields): the parts enter the redo streams;
 * - `dead` (kind, reason, attempts, history, at[, raw]): to the dead letters;
 * - `cancel` (no values): the chunk leaves, counted as cancelled.
 * A request applies only while its claim is current and carries the entry's epoch. In a cancelled
 * job (its control read here, in the same step) every plan is `cancel`, as policy.ts
 * `underControl` says, except that a message that is not a chunk is still dead-lettered as
 * malformed. Returns one letter per request: l(released), r(etrying), s(plit), d(ead-lettered),
 * c(ancelled), z(ombie).
 */
const NACK = `
local base, job, consumer = ARGV[1], ARGV[2], ARGV[3]
local cancelled_job = control_of(ARGV[4], job) == 'cancelled'
local out = {}
local c = { zombies = 0, retried = 0, splits = 0, malformed = 0, cancelled = 0 }
local now = nil
local i = 5
while i <= #ARGV do
  local receipt, epoch, action, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  local v = i + 4
  i = v + n
  local key, id = parse_receipt(base, receipt)
  local rows = {}
  if key and holder_of(key, id) == consumer then rows = redis.call('XRANGE', key, id, id) end
  if #rows == 0 or claim_epoch(rows[1][2]) ~= tonumber(epoch) then
    c.zombies = c.zombies + 1
    out[#out + 1] = 'z'
  else
    redis.call('XACK', key, GROUP, id)
    local flat = rows[1][2]
    if cancelled_job and not (action == 'dead' and ARGV[v] == 'malformed') then action = 'cancel' end
    if action == 'cancel' then
      c.cancelled = c.cancelled + 1
      out[#out + 1] = 'c'
    elseif action == 'release' then
      redo(base, with_fields(flat, { 'epoch', epoch }))
      out[#out + 1] = 'l'
    elseif action == 'retry' then
      if not now then now = now_ms() end
      local back = with_fields(flat, { 'attempts', ARGV[v], 'history', ARGV[v + 1], 'epoch', epoch })
      redis.call('ZADD', base .. ':delayed', now + tonumber(ARGV[v + 2]), cjson.encode(back))
      c.retried = c.retried + 1
      out[#out + 1] = 'r'
    elseif action == 'split' then
      add_parts(base, ARGV, v, n, epoch)
      c.splits = c.splits + 1
      out[#out + 1] = 's'
    else
      if dead_letter(base, job, flat, ARGV, v, n, epoch) then c.malformed = c.malformed + 1 end
      out[#out + 1] = 'd'
    end
  end
end
count(base, c)
return table.concat(out)
`;

/**
 * extend: ARGV base, consumer, controls hash, job id, then receipts. Renews each current claim
 * (XCLAIM … JUSTID to its own consumer resets the entry's idle time): extended, or cancelled in a
 * cancelled job (renewed all the same, so its holder can give it back). A claim that is not
 * current is a zombie when its entry is pending for another consumer (a legacy worker's
 * stale-task recovery) or a reclaim took it over (`taken`); otherwise its holder settled it or
 * the job was reset: gone, not counted. Returns e(xtended), c(ancelled), g(one) or z(ombie) per
 * receipt.
 */
const EXTEND = `
local base, consumer = ARGV[1], ARGV[2]
local live = 'e'
if control_of(ARGV[3], ARGV[4]) == 'cancelled' then live = 'c' end
local receipts = {}
for i = 5, #ARGV do receipts[#receipts + 1] = ARGV[i] end
local targets, current = current_claims(base, receipts, consumer)
local out, renew = {}, {}
local zombies = 0
for i, receipt in ipairs(receipts) do
  local t = targets[i]
  if t and current[t[1]][t[2]] then
    local ids = renew[t[1]]
    if not ids then ids = {}; renew[t[1]] = ids end
    ids[#ids + 1] = t[2]
    out[i] = live
  elseif t and (holder_of(t[1], t[2]) or redis.call('SISMEMBER', base .. ':taken', receipt) == 1) then
    zombies = zombies + 1
    out[i] = 'z'
  else
    out[i] = 'g'
  end
end
for key, ids in pairs(renew) do over_ids('XCLAIM', key, ids, { consumer, 0 }, { 'JUSTID' }) end
count(base, { zombies = zombies })
return table.concat(out)
`;

/** The commit scripts, by the command name they are defined under. */
export const COMMIT_SCRIPTS = {
  ttgAck: script(ACK),
  ttgNack: script(NACK),
  ttgExtend: script(EXTEND),
} as const;
