"""Kafka -> the live feed: every client-facing event lands once in the Redis stream `gpubroker:feed`.

Reads gpubroker.price-changes, gpubroker.anomalies, gpubroker.provider-events and
gpubroker.health-scores (`protocol.TOPICS`; consumer group `gpubroker-feed-bridge`). Each batch becomes one Lua call that appends the events not seen before
(by event_id, remembered `SEEN_SECONDS`) to the stream; only then are the Kafka offsets committed.
At-least-once into an idempotent append: a crash, a Kafka outage or a Redis outage loses nothing
and repeats nothing (a Flink replay re-emits the same event ids). While Redis is down the batch is
retried with backoff for as long as it takes (tenacity); Kafka keeps what arrives meanwhile.

A message that breaks its topic's contract is poison: it goes to `gpubroker.dead-letter` (with the
reason and its origin in headers) and the feed moves on. One the stream refuses is tried
`ATTEMPTS` times on its own, then dead-lettered too: nothing stalls the feed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import redis
import tenacity
from confluent_kafka import Consumer, KafkaError, Message, Producer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeout

from feed import protocol
from feed.hub import STREAM, STREAM_LENGTH
from gpubroker import settings

log = logging.getLogger(__name__)
GROUP_ID = settings.Groups.FEED_BRIDGE
SEEN_SECONDS = 24 * 3600
BATCH = 500
ATTEMPTS = 3
REDIS_DOWN = (RedisConnectionError, RedisTimeout, ConnectionError, OSError)

# KEYS[1]: the stream. ARGV: max length, seconds an event id is remembered, then per event:
# event_id, kind, channels (joined by \x1f), body (protocol.FeedEvent). Returns how many were new (and appended).
APPEND = """
local added = 0
for i = 3, #ARGV, 4 do
  if redis.call('SET', 'gpubroker:feed:seen:' .. ARGV[i], 1, 'NX', 'EX', ARGV[2]) then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
               'kind', ARGV[i + 1], 'event_id', ARGV[i], 'channels', ARGV[i + 2], 'body', ARGV[i + 3])
    added = added + 1
  end
end
return added
"""


def consumer() -> Consumer:
    return Consumer(settings.kafka_config() | {
        "group.id": GROUP_ID, "enable.auto.commit": False,
        "auto.offset.reset": "latest", "enable.partition.eof": False,
    })  # fmt: skip


class Bridge:
    def __init__(self, client: redis.Redis | None = None, producer: Producer | None = None):
        self.redis = client or redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)
        self.append_script = self.redis.register_script(APPEND)
        self.producer = producer or Producer(settings.kafka_config() | {"enable.idempotence": True})

    def handle(self, messages: Sequence[Message]) -> int:
        """Append a batch's events to the feed (dead-lettering poison); returns how many were new."""
        events, poison = [], []
        for message in messages:
            try:
                event = protocol.from_kafka(message.topic(), message.value())
            except protocol.PoisonMessage as broken:
                poison.append((message, str(broken)))
                continue
            if event is not None:
                events.append((message, event))
        added = self._append_batch(events) if events else 0
        if poison:
            self.dead_letter(poison)
        return added

    @tenacity.retry(retry=tenacity.retry_if_exception_type(REDIS_DOWN), wait=tenacity.wait_exponential(0.2, max=5),
                    before_sleep=tenacity.before_sleep_log(log, logging.WARNING))  # fmt: skip
    def _append_batch(self, events: list[tuple[Message, protocol.FeedEvent]]) -> int:
        """Retried without end while Redis is unreachable: at-least-once, never dropped."""
        try:
            return self._append([e for _, e in events])
        except ResponseError:  # the stream refused something in the batch: find it, one by one
            return sum(self._append_alone(message, event) for message, event in events)

    def _append(self, events: Sequence[protocol.FeedEvent]) -> int:
        args: list = [STREAM_LENGTH, SEEN_SECONDS]
        for event in events:
            args += [event.event_id, event.kind, "\x1f".join(event.channels), event.body]
        return int(self.append_script(keys=[STREAM], args=args))

    def _append_alone(self, message: Message, event: protocol.FeedEvent) -> int:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._append([event])
            except ResponseError as refused:
                if attempt == ATTEMPTS:
                    self.dead_letter([(message, f"refused by the feed stream {ATTEMPTS} times: {refused}")])
        return 0

    def dead_letter(self, poison: Sequence[tuple[Message, str]]) -> None:
        for message, reason in poison:
            log.warning("dead-lettering %s[%s]@%s: %s", message.topic(), message.partition(), message.offset(), reason)
            self.producer.produce(settings.Topics.DEAD_LETTER, key=message.key(), value=message.value(), headers={
                "source.topic": message.topic(), "source.partition": str(message.partition()),
                "source.offset": str(message.offset()), "reason": reason[:1000],
            })  # fmt: skip
        self.producer.flush(30)


def run(stop_after: float | None = None) -> None:
    """Forward until stopped (or for `stop_after` seconds): poll, append, then commit."""
    kafka, bridge = consumer(), Bridge()
    kafka.subscribe(list(protocol.TOPICS))
    deadline = None if stop_after is None else time.monotonic() + stop_after
    log.info("forwarding %s to the live feed (%s)", ", ".join(protocol.TOPICS), STREAM)
    try:
        while deadline is None or time.monotonic() < deadline:
            first = kafka.poll(1.0)
            if first is None:
                continue
            batch = [first, *kafka.consume(num_messages=BATCH - 1, timeout=0)]  # what is there now
            good = [m for m in batch if not m.error()]
            for m in batch:
                if m.error() and m.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", m.error())
            if good:
                bridge.handle(good)
                kafka.commit(asynchronous=False)
    finally:
        kafka.close()

