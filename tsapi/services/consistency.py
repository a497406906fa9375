"""Read-your-writes with a read replica: the newest acknowledged write's WAL position, in Redis.

Every node records, after each acknowledged write, the primary's WAL position here (only
ever raised), and a read uses the replica only once the replica has replayed past it (see
tsapi.store.replication). Redis is the one place all nodes and the CLI share, as for the
cache generations. Without Redis, or while it is unreachable, reads go to the primary: the
position is then unknown, and the replica is never trusted blindly. Both reads and writes of
the position go through the process's Redis gate (tsapi.services.redis_gate): after Redis
failed for anything in this process, reads use the primary without waiting on it.
"""

from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError

from tsapi.services.redis_gate import GateClosed, RedisGate

log = logging.getLogger(__name__)

WATERMARK_KEY = "tsapi:wal:acknowledged"
# Positions are stored as 16 hex digits, so comparing the strings compares the numbers.
_RAISE = """
local current = redis.call('GET', KEYS[1])
if not current or current < ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""


class RedisWatermark:
    """tsapi.store.replication.Watermark on Redis; never raises."""

    def __init__(self, client: Redis, gate: RedisGate, unsure_seconds: float):
        self.client = client
        self.gate = gate
        self._raise = client.register_script(_RAISE)
        # After this node failed to record a write, it reads the primary for a while.
        self.unsure_seconds = unsure_seconds
        self._unsure_until = 0.0

    def get(self) -> int | None:
        if time.monotonic() < self._unsure_until:
            return None
        try:
            value = self.gate.call(lambda: self.client.get(WATERMARK_KEY))
        except RedisError:
            return None
        return int(value, 16) if value else 0

    def raise_to(self, lsn: int) -> None:
        try:
            # Urgent, as the response cache's generation bump: other nodes depend on it.
            self.gate.call(lambda: self._raise(keys=[WATERMARK_KEY], args=[f"{lsn:016x}"]),
                           urgent=True)
        except RedisError as exc:
            # The write is committed either way. This node reads the primary for a while;
            # another node may serve this client from a replica that lacks the write, but
            # never from one lagging more than TSAPI_MAX_REPLICA_LAG.
            self._unsure_until = time.monotonic() + self.unsure_seconds
            if not isinstance(exc, GateClosed):  # the gate logged why it is closed
                log.warning("could not record a write's WAL position: %s", exc)
