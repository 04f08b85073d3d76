"""The edge agent: MQTT session, command loop, periodic reports, control (D1, D5, D13).

One ``asyncio.TaskGroup`` runs named tasks: the MQTT session (reconnects forever with jittered
backoff, to the configured brokers in turn; a configuration error ends it), the periodic
list/post reporter, the status publisher and the control loop. Commands are handled one at a
time in arrival order by the session task itself (D5).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import aiomqtt

from gridguard.edge.batch import Handled
from gridguard.edge.coalesce import Coalescer
from gridguard.edge.health import Health, refused_ops
from gridguard.edge.service import CommandService
from gridguard.mqtt.session import acknowledge_when_handled, client_kwargs, forwarding_queue
from gridguard.protocol.topics import COMMAND_OPS, TopicScheme, build_topic, parse_topic
from gridguard.redact import redact
from gridguard.site.config import ConfigError, SiteConfig
from gridguard.strategy.model import Strategy

if TYPE_CHECKING:
    from gridguard.edge.metrics import MetricsRecorder

log = logging.getLogger("gridguard.edge")

MAX_BATCH = 256
"""Commands already waiting when one is taken are handled with it, in one commit."""
MAX_PUBLISHES_IN_FLIGHT = 512
LIST_SETTLE_S = 0.05
"""list/post goes out once changes have paused this long (D13, coalesced) ..."""
LIST_MAX_DELAY_S = 1.0
"""... and at least this often while changes keep coming."""
TIMER_SLACK_S = 0.001
"""A timer may fire this much before its time and still count as on time."""
WARM_SLICE = 64
"""Wire objects a report encodes between two chances for commands to run (~2 ms)."""
BACKOFF_MIN_S = 0.5
BACKOFF_MAX_S = 30.0


class RepliesInFlight:
    """Reply publishes still waiting for the broker's PUBACK, oldest first.

    The replies are published without a timer each (one per reply cost more than the rest of
    publishing it); instead the session watches the age of the oldest one. A broker that keeps
    the connection (and answers pings) but stores nothing, such as a cluster node whose
    JetStream lost its leaders, would otherwise hold every command unanswered for as long as
    the connection lasts.
    """

    def __init__(self) -> None:
        self._queue: deque[tuple[float, asyncio.Task[None]]] = deque()

    def add(self, task: asyncio.Task[None], now_s: float) -> None:
        self._queue.append((now_s, task))

    def oldest_age_s(self, now_s: float) -> float:
        """How long the oldest reply not yet acknowledged has waited (0 when none waits)."""
        while self._queue and self._queue[0][1].done():
            self._queue.popleft()
        return now_s - self._queue[0][0] if self._queue else 0.0


async def watch_replies(
    in_flight: RepliesInFlight,
    limit_s: float,
    now_s: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Ends the session (raises) once a reply has waited ``limit_s`` for its PUBACK; the
    command stays unacknowledged, so the next broker delivers it again and it is answered
    from the reply table."""
    period_s = min(1.0, limit_s / 4)
    while True:
        await sleep(period_s)
        waited_s = in_flight.oldest_age_s(now_s())
        if waited_s >= limit_s:
            raise aiomqtt.MqttError(
                f"a reply has waited {waited_s:.0f} s for the broker's acknowledgement "
                f"(mqtt.puback_timeout_s = {limit_s:g}): the broker is not storing messages"
            )


class Inbox:
    """Received messages, taken in arrival order and in batches of whatever is waiting."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue()

    def push(self, message: aiomqtt.Message) -> None:
        self._queue.put_nowait(message)

    async def take(self, limit: int) -> list[aiomqtt.Message]:
        """The oldest waiting messages, at most ``limit`` (waits for the first one)."""
        batch = [await self._queue.get()]
        while len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch


class Controller(Protocol):
    """What the agent needs of the control engine."""

    def set_strategies(self, strategies: list[Strategy]) -> None: ...

    async def run(self, stop: asyncio.Event) -> None: ...

    def status_document(self) -> dict[str, Any]: ...

    def status_json(self) -> bytes:
        """:meth:`status_document` as one encoded JSON object."""
        ...


def scheme_of(site: SiteConfig) -> TopicScheme:
    mqtt = site.mqtt
    return TopicScheme(
        mqtt.scheme,
        product_key=mqtt.product_key or "",
        tenant=mqtt.tenant or "",
        prefix=mqtt.prefix or "",
    )


def next_backoff_s(previous_s: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter, between BACKOFF_MIN_S and BACKOFF_MAX_S."""
    ceiling = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, previous_s * 2))
    return rng.uniform(BACKOFF_MIN_S, ceiling)


async def _acknowledge_after(
    replies: list[asyncio.Task[None]],
    previous: asyncio.Task[None] | None,
    acknowledge: Callable[[], None],
) -> None:
    """Acknowledge a batch once the broker has every reply of it (PUBACK), and after the
    batch before it (acknowledgements in arrival order). A failed reply ends the session
    first: the batch stays unacknowledged and is delivered again."""
    if replies:
        await asyncio.gather(*replies)
    if previous is not None:
        await previous
    acknowledge()


def _reason(error: BaseException | None) -> str:
    """What ended a session: the first error inside nested task groups, named by its type."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return "stopped" if error is None else f"{type(error).__name__}: {error}"


def _config_errors(group: BaseExceptionGroup[BaseException]) -> Iterator[ConfigError]:
    for error in group.exceptions:
        if isinstance(error, ConfigError):
            yield error
        elif isinstance(error, BaseExceptionGroup):
            yield from _config_errors(error)


class EdgeAgent:
    """Serves the strategy protocol for one EMS on one broker."""

    def __init__(
        self,
        site: SiteConfig,
        service: CommandService,
        *,
        controller: Controller | None = None,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._site = site
        self._metrics = metrics
        self._service = service
        self._controller = controller
        self._scheme = scheme_of(site)
        self._uid = site.device.uid
        self._client: aiomqtt.Client | None = None
        self._on_connected = on_connected
        self._rng = random.Random()  # noqa: S311 - jitter, not cryptography
        self.connected = asyncio.Event()
        self._list_schedule = Coalescer(LIST_SETTLE_S, LIST_MAX_DELAY_S)
        self._list_timer: asyncio.TimerHandle | None = None
        self._list_wanted = asyncio.Event()
        self._served = False
        self.broker_url: str | None = None
        """The broker of the current session (one of ``mqtt.broker_urls``), once connected."""
        self.health = Health()
        self.health.quarantined = [q.id for q in service.quarantined]

    def topic(self, op: str, direction: str) -> str:
        return build_topic(self._scheme, self._uid, op, direction)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; raise ConfigError if the settings cannot work."""
        if self._controller is not None:
            self._controller.set_strategies(self._service.strategies)
        try:
            await self._run_tasks(stop)
        except ExceptionGroup as group:
            config_error = next(_config_errors(group), None)
            if config_error is None:
                raise
            raise config_error from None

    async def _run_tasks(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._session_forever(stop), name="mqtt-session")
            group.create_task(self._report_forever(stop), name="list-reporter")
            if self._controller is not None:
                group.create_task(self._controller.run(stop), name="control-loop")
            if self._site.mqtt.status_enabled:
                group.create_task(self._status_forever(stop), name="status-publisher")

    async def _session_forever(self, stop: asyncio.Event) -> None:
        """Sessions, one after another, to the brokers in turn; ConfigError ends the agent."""
        backoff_s = BACKOFF_MIN_S
        urls = self._site.mqtt.broker_urls
        attempt = 0
        while not stop.is_set():
            url = urls[attempt % len(urls)]
            attempt += 1
            log.info("connecting to %s", redact(url))
            session = asyncio.create_task(self._session(url))
            stopper = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when run() itself is cancelled: no session outlives the agent
                for task in (session, stopper):
                    task.cancel()
                await asyncio.gather(session, stopper, return_exceptions=True)
            self.connected.clear()
            self._client = None
            if stop.is_set():
                return
            error = session.exception() if session.done() and not session.cancelled() else None
            if isinstance(error, ConfigError):
                log.error("mqtt configuration error: %s", redact(str(error)))
                raise error
            if self._served:  # the broker was fine until now: try again soon
                self._served, backoff_s = False, BACKOFF_MIN_S
            backoff_s = next_backoff_s(backoff_s, self._rng)
            log.warning(
                "mqtt session with %s ended (%s); next broker in %.1f s",
                redact(url),
                redact(_reason(error)),
                backoff_s,
            )
            try:
                await asyncio.wait_for(stop.wait(), timeout=backoff_s)
            except TimeoutError:
                continue

    async def _session(self, url: str) -> None:
        inbox = Inbox()
        kwargs = client_kwargs(self._site.mqtt, self._uid, url)
        try:
            client = aiomqtt.Client(**kwargs, queue_type=forwarding_queue(inbox.push))
        except (OSError, ssl.SSLError) as exc:  # TLS files that exist but cannot be used
            raise ConfigError(f"mqtt.tls: {exc}") from None
        acknowledge = acknowledge_when_handled(client)
        async with client:
            client.pending_calls_threshold = MAX_PUBLISHES_IN_FLIGHT + 16  # bursts are expected
            # Subscribe first, then announce: no command can slip between the two (D13).
            await self._subscribe(client, COMMAND_OPS)
            self._client = client
            await self.publish_list()
            self.connected.set()
            self._served = True
            self.broker_url = url
            log.info(
                "connected to %s; %s %s/%s",
                redact(url),
                self.health.state,
                self._scheme.prefix_path,
                self._uid,
            )
            if self._on_connected is not None:
                await self._on_connected()
            replies = RepliesInFlight()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch(client, inbox), name="mqtt-watch")
                group.create_task(
                    watch_replies(replies, self._site.mqtt.puback_timeout_s), name="pubacks"
                )
                group.create_task(
                    self._process(group, client, inbox, acknowledge, replies), name="commands"
                )
                group.create_task(self._list_on_change(), name="list-on-change")
                group.create_task(self._resubscribe(client), name="resubscribe")

    async def _subscribe(self, client: aiomqtt.Client, ops: Sequence[str]) -> None:
        """Subscribe to ops' command topics and record which the broker refused."""
        granted = await client.subscribe([(self.topic(op, "command"), 1) for op in ops])
        refused = refused_ops(ops, granted)
        if self.health.subscriptions(refused, set(ops) - set(refused)) and self._client:
            await self._publish_safely(self.publish_status)

    async def _resubscribe(self, client: aiomqtt.Client) -> None:
        """Retries refused subscriptions with backoff (an ACL may be fixed meanwhile)."""
        delay_s = BACKOFF_MIN_S
        while True:
            await asyncio.sleep(delay_s)
            if self.health.refused:
                await self._subscribe(client, sorted(self.health.refused))
                delay_s = next_backoff_s(delay_s, self._rng)
            else:
                delay_s = BACKOFF_MIN_S

    async def _watch(self, client: aiomqtt.Client, inbox: Inbox) -> None:
        """Ends the session when the connection drops (messages reach ``inbox`` directly)."""
        async for message in client.messages:  # only if one ever bypassed the forwarding
            inbox.push(message)
        raise aiomqtt.MqttError("message stream ended")

    def _command(self, message: aiomqtt.Message) -> tuple[str, bytes] | None:
        try:
            topic = parse_topic(message.topic.value)
        except ValueError:
            log.warning("ignoring message on unexpected topic %s", message.topic.value)
            return None
        if topic.direction != "command" or topic.device != self._uid:
            return None
        payload = message.payload if isinstance(message.payload, bytes) else b""
        return topic.op, payload

    async def _process(
        self,
        group: asyncio.TaskGroup,
        client: aiomqtt.Client,
        inbox: Inbox,
        acknowledge: Callable[[Iterable[aiomqtt.Message]], None],
        waiting: RepliesInFlight,
    ) -> None:
        """Commands in arrival order (D5); those already waiting are group-committed. Each is
        acknowledged to the broker only once its reply is: committed with its reply (or
        refused) and the reply acknowledged by the broker. A command whose reply was lost with
        the agent is delivered again, and answered again from the reply table."""
        in_flight = asyncio.Semaphore(MAX_PUBLISHES_IN_FLIGHT)
        acknowledged: asyncio.Task[None] | None = None
        while True:
            messages = await inbox.take(MAX_BATCH)
            commands = [c for c in map(self._command, messages) if c is not None]
            started_s = time.perf_counter()
            handled = await self._handle(commands) if commands else []
            if self._metrics is not None:
                self._metrics.answered(handled, time.perf_counter() - started_s)
            replies: list[asyncio.Task[None]] = []
            for result in handled:  # replies go out in order, after the commit
                await in_flight.acquire()
                # No timeout of its own (math.inf): a lost connection ends the session, and
                # the timer per reply cost more than the rest of publishing it.
                reply = client.publish(
                    self.topic(result.op, "result"), result.reply, qos=1, timeout=math.inf
                )
                task = group.create_task(reply)
                task.add_done_callback(lambda _: in_flight.release())
                waiting.add(task, time.monotonic())
                replies.append(task)
            acknowledged = group.create_task(
                _acknowledge_after(replies, acknowledged, partial(acknowledge, messages))
            )
            if any(result.changed for result in handled):
                self.health.quarantined = [q.id for q in self._service.quarantined]
                if self._controller is not None:
                    self._controller.set_strategies(self._service.strategies)
                self._list_changed()

    async def _handle(self, commands: list[tuple[str, bytes]]) -> list[Handled]:
        """The service's replies; a failure outside its own guards is a 500 for each command,
        never the end of the session (the commands are acknowledged and answered)."""
        try:
            return await self._service.handle_batch(commands)
        except Exception:
            log.exception("command batch of %d failed outside the service's guards", len(commands))
            return self._service.failed(commands)

    def _list_changed(self) -> None:
        """A change was answered: list/post falls due per :class:`Coalescer` (D13). A timer,
        not a task per change: the reply of the next command must not wait behind it."""
        loop = asyncio.get_running_loop()
        self._list_schedule.changed(loop.time())
        if self._list_timer is None:
            self._arm_list_timer(loop)

    def _arm_list_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        due_s = self._list_schedule.due_at()
        self._list_timer = None if due_s is None else loop.call_at(due_s, self._list_timer_fired)

    def _list_timer_fired(self) -> None:
        loop = asyncio.get_running_loop()
        if self._list_schedule.take(loop.time() + TIMER_SLACK_S):
            self._list_timer = None
            self._list_wanted.set()
        else:  # changes came meanwhile: the due time moved on
            self._arm_list_timer(loop)

    async def _list_on_change(self) -> None:
        """Publishes list/post when one fell due; the list is always the newest state, and
        replies never wait for it."""
        while True:
            await self._list_wanted.wait()
            self._list_wanted.clear()
            await self.publish_list()

    async def publish_list(self) -> None:
        """Publish list/post (retained per config, D5/D13) if connected. Wire objects out of
        date are encoded first, a slice at a time with the loop free between slices: the list
        itself is then joined from cached objects in about a millisecond per 1,000."""
        if self._client is None:
            return
        stale = self._service.stale_report()
        for start in range(0, len(stale), WARM_SLICE):
            self._service.warm_report(stale[start : start + WARM_SLICE])
            await asyncio.sleep(0)
        client = self._client
        if client is None:
            return
        await client.publish(
            self.topic("list", "post"),
            self._service.list_post(),
            qos=1,
            retain=self._site.mqtt.retain_list,
        )

    async def _report_forever(self, stop: asyncio.Event) -> None:
        interval_s = self._site.site.report_interval_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                await self._publish_safely(self.publish_list)

    async def _status_forever(self, stop: asyncio.Event) -> None:
        interval_s = self._site.mqtt.status_interval_s
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                await self._publish_safely(self.publish_status)

    async def publish_status(self) -> None:
        """Publish the extension status topic (not retained): the agent's state and, with a
        control engine, its live view."""
        client = self._client
        if client is None or not self._site.mqtt.status_enabled:
            return
        agent = json.dumps({"agent": self.health.document()}, separators=(",", ":")).encode()
        if self._controller is None:
            payload = agent
        else:  # the controller's snapshot with the agent's part added (one JSON object)
            payload = self._controller.status_json()[:-1] + b"," + agent[1:]
        qos = self._site.mqtt.status_qos
        await client.publish(self.topic("status", "post"), payload, qos=qos, retain=False)

    async def _publish_safely(self, publish: Callable[[], Awaitable[None]]) -> None:
        try:
            await publish()
        except aiomqtt.MqttError as exc:
            log.info("periodic publish skipped: %s", exc)
