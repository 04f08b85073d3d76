"""The platform's one MQTT connection: subscribe to every configured prefix, publish commands.

On :class:`~gridguard.mqtt.lite.LiteClient`: a status stream of 5,000 messages/s is where a
library's ~190 us of CPU per received message (aiomqtt, measured by ``bench/mqtt_clients.py``)
would cost a whole core. Reconnects with jittered backoff; asyncio sets TCP_NODELAY.

**Nothing received is lost when an instance dies** (MQTT 5, ``session_expiry_s`` > 0, the
default). Each instance keeps a session on the broker under its client id and acknowledges a
message only once it is stored (status reports: after the telemetry flush committed; results and
list/post: after their handler ran), so whatever it had received but not stored when it was
killed stays in its session, with whatever the broker routes to it meanwhile (a ``$share``
member that is away keeps getting its share). Its will, retained, on
``gridguard/platform/{deployment}/{client id}/gone`` tells the other instances at once (the
deployment is a digest of the subscriptions: platforms serving other prefixes or another share
group on the same broker never take each other's sessions, whose reports belong in another
database): one of them
*adopts* the session (connects under the dead instance's client id, takes everything the broker
kept for it through the same lanes, stores it, acknowledges it, then unsubscribes and ends the
session). A report the dead instance had stored but not acknowledged comes again marked as a
duplicate and is recognised by the writer. An instance restarted under its own client id
(``--client-id``) resumes its session instead; one stopped cleanly unsubscribes, stores what it
has and ends its session. On MQTT 3.1.1 (a broker without MQTT 5: the demo's amqtt, NATS) the
connection is a clean session acknowledged on receipt, as before: what a killed instance had
not yet stored is lost there.

Received messages go into two lanes, each handled in arrival order by its own task: status/post
(the volume, buffered by the telemetry writer) and everything else (results and list/post,
which write to the database), so a slow commit never holds up the status stream and the status
stream never delays a result.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import random
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gridguard.mqtt.lite import (
    MQTT_5,
    MQTT_311,
    UNSUPPORTED_VERSION,
    LiteClient,
    LiteMqttError,
    Publication,
)
from gridguard.mqtt.session import parse_mqtt_url

log = logging.getLogger("gridguard.platform.bus")

STATUS_SUFFIX = "/status/post"
RECEIVE_MAXIMUM = 65_535
"""Messages the broker may have in flight to an instance before it queues (MQTT 5; 3.1.1
brokers allow 20, which would cap a store-then-acknowledge stream at 20 per flush)."""
ADOPTER_WILL_DELAY_S = 5
"""An adopter's will waits this long: one adopter taking the session from another (two
instances saw the same will) must not announce a death that did not happen."""
PROBE_TIMEOUT_S = 3.0
"""How long a first MQTT 5 CONNECT waits for its CONNACK before 3.1.1 is tried."""
DRAIN_STALL_S = 15.0
"""A stopping or adopting session waits for what it received to be stored as long as the
store makes progress; after this long without any, it leaves the session to the broker (and
announces it gone, so another instance takes it over) instead of ending it."""


def deployment_of(topics: Sequence[str]) -> str:
    """Instances with the same subscriptions are one deployment (one database)."""
    return hashlib.sha256("\n".join(sorted(topics)).encode()).hexdigest()[:12]


def gone_topic(deployment: str, client_id: str) -> str:
    """Where an instance's will says it died (retained), and is cleared when it is back."""
    return f"gridguard/platform/{deployment}/{client_id}/gone"


@dataclass(slots=True)
class Receipt:
    """The acknowledgement of one received message: by default sent once its handler has run;
    a handler that stores the message later takes it over with :meth:`defer`."""

    client: LiteClient | None
    packet_id: int = 0
    dup: bool = False
    """The broker may have sent this message before (to an instance that died)."""
    deferred: bool = False

    def defer(self) -> Receipt:
        self.deferred = True
        return self


def acknowledge(receipts: Iterable[Receipt]) -> None:
    """Acknowledge stored messages, one write per connection."""
    by_client: dict[int, tuple[LiteClient, list[int]]] = {}
    for r in receipts:
        if r.client is not None and r.packet_id:
            by_client.setdefault(id(r.client), (r.client, []))[1].append(r.packet_id)
    for client, packet_ids in by_client.values():
        with contextlib.suppress(LiteMqttError):  # gone: sent again to whoever resumes it
            client.ack(packet_ids)


Handler = Callable[[str, bytes, Receipt], Awaitable[None]]


class _Lane:
    """Messages handled one at a time, in arrival order, by one task."""

    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self._handler = handler
        self._queue: collections.deque[tuple[str, bytes, Receipt]] = collections.deque()
        self._ready = asyncio.Event()

    def put(self, topic: str, payload: bytes, receipt: Receipt) -> None:
        self._queue.append((topic, payload, receipt))
        self._ready.set()

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                topic, payload, receipt = self._queue.popleft()
                try:
                    await self._handler(topic, payload, receipt)
                except Exception:
                    log.exception("handling %s failed", topic)
                if not receipt.deferred:
                    acknowledge((receipt,))  # handled, or refused for good: never again


class Bus:
    """Connect, subscribe, hand each message to ``handler`` (in arrival order per lane)."""

    def __init__(
        self,
        url: str,
        topics: list[str],
        handler: Handler,
        *,
        client_id: str | None = None,
        mqtt_version: int | None = None,
        session_expiry_s: int = 0,
        takeover: bool = True,
    ) -> None:
        """``mqtt_version``: 5, 4 (3.1.1) or None (5, else 3.1.1 when the broker refuses 5).
        ``session_expiry_s`` > 0 on MQTT 5: store-then-acknowledge sessions (module doc).
        ``takeover``: take dead instances' sessions over (off where the broker forces every
        client id to the certificate's name: there a takeover would end our own session)."""
        self._address = parse_mqtt_url(url)
        self._topics = topics
        self._deployment = deployment_of(topics)
        self._gone_filter = gone_topic(self._deployment, "+")
        self._gone_prefix = self._gone_filter.removesuffix("+/gone")
        self._client_id = client_id or f"gridguard-platform-{uuid.uuid4().hex[:12]}"
        self._version = mqtt_version or MQTT_5
        self._fixed_version = mqtt_version is not None
        self._spoke_5 = False
        self._guessed_311 = False
        """The broker accepted MQTT 5 once: a later failure is the network's, not the version's."""
        self._session_expiry_s = session_expiry_s
        self._takeover = takeover
        self._client: LiteClient | None = None
        self._status = _Lane("status", handler)
        self._control = _Lane("control", handler)
        self._adopting: dict[str, asyncio.Task[None]] = {}
        self.connected = asyncio.Event()
        self.drained = asyncio.Event()
        """Set when :meth:`run` has ended its session (what it received is stored)."""

    def _gone_of(self, client_id: str) -> str:
        return gone_topic(self._deployment, client_id)

    @property
    def lossless(self) -> bool:
        """Store-then-acknowledge on a session the broker keeps (MQTT 5 and an expiry)."""
        return self._version == MQTT_5 and self._session_expiry_s > 0

    async def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1; ConnectionError when the broker is away (the caller's retry covers a loss)."""
        client = self._client
        if client is None or not self.connected.is_set():
            raise ConnectionError(f"not connected to {self._address.host}:{self._address.port}")
        try:
            client.publish(topic, payload, qos=1)
        except LiteMqttError as exc:
            raise ConnectionError(str(exc)) from exc

    def _received(self, client: LiteClient | None, topic: str, payload: bytes) -> None:
        receipt = Receipt(client, client.packet_id, client.dup) if client else Receipt(None)
        if topic.startswith(self._gone_prefix) and topic.endswith("/gone"):
            self._gone(topic.removeprefix(self._gone_prefix).removesuffix("/gone"), payload)
            acknowledge((receipt,))
            return
        lane = self._status if topic.endswith(STATUS_SUFFIX) else self._control
        lane.put(topic, payload, receipt)

    def _gone(self, dead: str, payload: bytes) -> None:
        if not payload or dead == self._client_id or dead in self._adopting:
            return  # cleared, ours (a leftover of our own previous run), or being adopted
        if not (self.lossless and self._takeover):
            return
        self._adopting[dead] = asyncio.get_running_loop().create_task(
            self._adopt(dead), name=f"platform-mqtt-adopt-{dead}"
        )

    async def run(self, stop: asyncio.Event) -> None:
        lanes = [
            asyncio.create_task(lane.run(), name=f"platform-mqtt-{lane.name}")
            for lane in (self._status, self._control)
        ]
        try:
            await self._connect_loop(stop)
        finally:
            for task in self._adopting.values():
                task.cancel()
            self.drained.set()
            for lane in lanes:
                lane.cancel()
            for lane in lanes:
                with contextlib.suppress(asyncio.CancelledError):
                    await lane

    async def _connect_loop(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff_s = 0.5
            except LiteMqttError as exc:
                if self._fall_back(exc):
                    continue
                log.warning("MQTT connection lost: %s; retrying in %.1f s", exc, backoff_s)
            except OSError as exc:
                log.warning("MQTT connection lost: %s; retrying in %.1f s", exc, backoff_s)
            finally:
                self.connected.clear()
                self._client = None
            if self._guessed_311:  # a guess from silence: ask for 5 again at the next connect
                self._version, self._guessed_311 = MQTT_5, False
            if stop.is_set():
                return
            try:
                await asyncio.wait_for(stop.wait(), backoff_s * random.uniform(0.5, 1.0))  # noqa: S311
            except TimeoutError:
                backoff_s = min(backoff_s * 2, 30.0)

    def _fall_back(self, exc: LiteMqttError) -> bool:
        """A broker that refuses MQTT 5: 3.1.1 from now on, unless a version was set. One that
        never answers a first MQTT 5 CONNECT (amqtt 0.12 leaves it unanswered, a busy broker may
        be slow): 3.1.1 for the next session, 5 asked for again when it ends."""
        if self._fixed_version or self._version != MQTT_5 or self._spoke_5:
            return False
        if exc.code not in UNSUPPORTED_VERSION and not exc.unanswered:
            return False  # refused for another reason (a password), or no broker there
        log.warning(
            "the broker did not take an MQTT 5 connection (%s): on MQTT 3.1.1, reports are "
            "acknowledged on receipt (what a killed instance had not stored is lost)",
            exc,
        )
        self._version = MQTT_311
        # a refusal of 5 is final; silence may have been a slow broker: guessed, for a session
        self._guessed_311 = exc.code is None
        return True

    def _connect_options(self, client_id: str) -> dict[str, Any]:
        a = self._address
        options: dict[str, Any] = {
            "username": a.username,
            "password": a.password,
            "ssl_context": ssl.create_default_context() if a.tls else None,
        }
        if self.lossless:
            options |= {
                "clean_start": False,
                "session_expiry_s": self._session_expiry_s,
                "receive_maximum": RECEIVE_MAXIMUM,
                "will": Publication(
                    self._gone_of(client_id), client_id.encode(), qos=1, retain=True
                ),
            }
        return options

    async def _session(self, stop: asyncio.Event) -> None:
        a = self._address
        lossless = self.lossless
        client = LiteClient(
            self._client_id,
            self._received,
            keepalive_s=60,
            version=self._version,
            manual_ack=lossless,
        )
        probing = self._version == MQTT_5 and not (self._fixed_version or self._spoke_5)
        await client.connect(
            a.host,
            a.port,
            # a broker that ignores an MQTT 5 CONNECT is found out in seconds, not ten
            timeout_s=PROBE_TIMEOUT_S if probing else 10.0,
            subscriptions=[(t, 1) for t in self._topics],
            # back: clear a will a previous run of ours left (nobody adopts a live session)
            announce=[Publication(self._gone_of(self._client_id), b"", qos=1, retain=True)]
            if lossless
            else (),
            **self._connect_options(self._client_id),
        )
        self._spoke_5 = self._spoke_5 or self._version == MQTT_5
        if lossless:
            await self._watch_for_the_dead(client)
        self._client = client
        self.connected.set()
        log.info("MQTT connected to %s:%d (MQTT %s)", a.host, a.port, _name(self._version))
        assert client.closed is not None
        waiter = asyncio.create_task(stop.wait(), name="platform-mqtt-stop")
        either: set[asyncio.Future[Any]] = {client.closed, waiter}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not client.closed.done():
            if lossless and not await self._end_session(client, "stopping"):
                self._leave_to_others(client, self._client_id)
                return
            client.close(session_expiry_s=0 if lossless else None)
            return
        client.closed.result()  # re-raises the LiteMqttError that ended the session

    async def _watch_for_the_dead(self, client: LiteClient) -> None:
        """Subscribe to the instances' wills; a broker whose ACL refuses that leaves this
        instance without adoption (said once), not without a connection."""
        try:
            await client.subscribe([(self._gone_filter, 1)])
        except (LiteMqttError, TimeoutError) as exc:
            log.warning("no adoption of dead instances' sessions: %s", exc)

    async def _end_session(self, client: LiteClient, why: str) -> bool:
        """Stop the broker routing to this session, then wait until what came is stored;
        True when it all was (the session may be ended), False when the store stalled."""
        loop = asyncio.get_running_loop()
        try:
            await client.unsubscribe([*self._topics, self._gone_filter])
        except (LiteMqttError, TimeoutError) as exc:
            log.warning("%s session %s: unsubscribe failed: %s", why, client.client_id, exc)
            return False
        left, progress_at = client.unacked_in, loop.time()
        while client.unacked_in and client.connected:
            await asyncio.sleep(0.05)
            if client.unacked_in < left:
                left, progress_at = client.unacked_in, loop.time()
            elif loop.time() - progress_at > DRAIN_STALL_S:
                log.warning(
                    "%s session %s: %d reports not stored after %.0f s without progress",
                    why,
                    client.client_id,
                    client.unacked_in,
                    DRAIN_STALL_S,
                )
                return False
        return client.connected

    def _leave_to_others(self, client: LiteClient, owner: str) -> None:
        """Disconnect keeping the session (what it holds stays with the broker) and say it is
        gone, so another instance, or this one later, takes it over."""
        with contextlib.suppress(LiteMqttError):
            client.publish(self._gone_of(owner), owner.encode(), qos=1, retain=True)
        client.close()

    async def _adopt(self, dead: str) -> None:
        """Take over a dead instance's session: what it kept, stored here, then ended."""
        a = self._address
        client = LiteClient(dead, self._received, keepalive_s=60, version=MQTT_5, manual_ack=True)
        try:
            # its will, delayed: not sent if another instance (or the dead one, back) takes the
            # session over from us; sent if we die while holding it
            options = self._connect_options(dead) | {"will_delay_s": ADOPTER_WILL_DELAY_S}
            await client.connect(a.host, a.port, **options)
            if client.session_present:
                log.warning("instance %s is gone: taking over its session", dead)
                if not await self._end_session(client, "adopted"):
                    self._leave_to_others(client, dead)
                    return
            if client.connected:
                client.publish(self._gone_of(dead), b"", qos=1, retain=True)
                client.close(session_expiry_s=0)
        except LiteMqttError as exc:  # e.g. the instance came back and took its session
            log.warning("taking over %s ended: %s", dead, exc)
        except asyncio.CancelledError:  # stopping: dropped, so the delayed will hands it on
            client.abort()
            raise
        finally:
            self._adopting.pop(dead, None)
            if client.closed is not None and client.closed.done() and not client.closed.cancelled():
                client.closed.exception()  # seen: the broker closing it is no surprise here


def _name(version: int) -> str:
    return "5" if version == MQTT_5 else "3.1.1"
