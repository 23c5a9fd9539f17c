"""The Lua scripts Redis runs atomically for the channels of a cluster.

Keys of one channel share the hash tag `{channel}`, so they stay in one slot.
"""

from __future__ import annotations

# Give the next seq of a channel, keep the publication in the channel's bounded history,
# keep the text streamed so far into its open parts (sessions), and publish it: one step, so
# every node sees the same seq, the history never lacks a published seq, and a snapshot of
# seq + live text is always consistent.
#
# KEYS: seq, history, open parts (set), live text of the part (list)
# ARGV: pubsub channel, body, history size, history ttl (s), live op ("" | append | close),
#       part id, delta
PUBLISH = """
local seq = redis.call('INCR', KEYS[1])
local message = seq .. '\\n' .. ARGV[2]
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('RPUSH', KEYS[2], message)
  redis.call('LTRIM', KEYS[2], -size, -1)
  redis.call('EXPIRE', KEYS[2], ARGV[4])
end
if ARGV[5] == 'append' then
  redis.call('SADD', KEYS[3], ARGV[6])
  redis.call('RPUSH', KEYS[4], ARGV[7])
  redis.call('EXPIRE', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[4], ARGV[4])
elseif ARGV[5] == 'close' then
  redis.call('SREM', KEYS[3], ARGV[6])
  redis.call('DEL', KEYS[4])
end
redis.call('PUBLISH', ARGV[1], message)
return seq
"""

# The seq of a channel and the text streamed so far into each of its open parts, together.
# KEYS: seq, open parts (set); ARGV: prefix of the live text keys (completed with a part id)
SNAPSHOT = """
local out = {tonumber(redis.call('GET', KEYS[1]) or '0')}
for _, part in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  table.insert(out, part)
  table.insert(out, table.concat(redis.call('LRANGE', ARGV[1] .. part, 0, -1)))
end
return out
"""
