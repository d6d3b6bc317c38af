"""The delivery worker: takes due rows from the queue, signs each attempt anew, posts them.

Rows stay in SQLite until an inbox accepts them, so a crash or kill -9 loses nothing; a
row posted just before a crash is posted again, and receivers drop the repeat by its id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable

from sqlite_utils import Database

from . import delivery_queue
from .backoff import FIRST_DELAY, MAX_ATTEMPTS, PROBE_INTERVAL, is_permanent_failure, retry_delay
from .client import FederationClient
from .clock import Clock, system_clock
from .errors import FetchFailed
from .runner import DbRunner
from .signer import Signer
from .waiting import wait_or_wake

log = logging.getLogger(__name__)
# Another process's wake-up (node/wake.py) may be lost; the queue is looked at this often
# anyway. Retries do not wait for it: the worker sleeps exactly until the next one is due.
SAFETY_POLL = 30.0
# Headers signed ahead for a ready delivery are used only this soon after: each attempt is
# signed anew, and a receiver checks the signature's Date against its clock.
SIGNED_AHEAD_MAX_AGE = 30.0


class DeliveryWorker:
    """Posts queued activities with bounded concurrency, per host and in all."""

    def __init__(
        self,
        db: DbRunner,
        client: FederationClient,
        signer_for: Callable[[str], Signer],
        *,
        max_total: int = 32,
        max_per_host: int = 4,
        poll_interval: float = SAFETY_POLL,
        first_retry: float = FIRST_DELAY,
        clock: Clock = system_clock,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.client = client
        self.signer_for = signer_for
        self.max_total = max_total
        self.max_per_host = max_per_host
        self.poll_interval = poll_interval
        self.first_retry = first_retry
        self.clock = clock
        self.jitter = jitter
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._per_host: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._next_due: float | None = None
        # Successes not yet written: the next cycle deletes them in its one database call
        # (a crash before that only sends them again, and receivers drop repeats by id).
        self._delivered: list[tuple[int, str]] = []
        # While run() serves: due rows fetched beyond the free slots, in turn order, started
        # the moment a delivery ends instead of one database round trip later. Fetched
        # afresh by every cycle, so at most one cycle old; nothing about them is written.
        self._chain = False
        self._ready: list[delivery_queue.Delivery] = []
        self._signers: dict[str, Signer] = {}
        self._chained: set[int] = set()  # started from _ready while a cycle's query ran
        # Signature headers being made for rows of _ready (by id, with when they were
        # asked for): an RSA signature costs about as much as a POST, and made while the
        # deliveries in flight are on the wire it does not hold a slot.
        self._ahead: dict[int, tuple[float, asyncio.Task[dict[str, str]]]] = {}

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll (new rows were added)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled: at once when woken, when the next retry or probe falls
        due, and at the latest every `poll_interval`."""
        self._chain = True
        try:
            while True:
                self._wake.clear()
                await self.run_single_cycle()
                wait = self.poll_interval
                if self._next_due is not None:
                    wait = min(wait, self._next_due - self.clock().timestamp())
                await wait_or_wake(self._wake, wait)
        finally:
            for task in list(self._in_flight.values()):
                task.cancel()
            await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
            await self._record_delivered()
            self._chain, self._ready = False, []
            self._sign_ahead()  # nothing is ready: every signature still being made stops

    async def run_single_cycle(self) -> int:
        """Start every delivery that is due and fits the limits; returns how many started."""
        room = self.max_total - len(self._in_flight)
        if room <= 0:
            self._next_due = None  # a delivery that ends wakes the worker
            return 0
        exclude = set(self._in_flight)
        now = self.clock().timestamp()
        done, self._delivered = self._delivered, []
        busy = dict(self._per_host)
        spare = self.max_total if self._chain else 0  # kept ready beyond the free slots
        self._chained = set()

        def host_room(host: str) -> int:
            return self.max_per_host - busy.get(host, 0)

        def cycle(db: Database) -> tuple[list[delivery_queue.Delivery], float | None]:
            if done:
                delivery_queue.delivered(db, done, now)
            due = delivery_queue.due_deliveries(
                db, now, exclude, room, PROBE_INTERVAL, host_room, spare, self.max_per_host
            )
            return due, delivery_queue.next_due_at(db, now)

        due, self._next_due = await self.db(cycle)
        # Started from the old _ready meanwhile: in flight, or already ended (its outcome
        # is written after this query, so it may still look due): not again.
        due = [d for d in due if d.id not in self._chained and d.id not in self._in_flight]
        signers: dict[str, Signer] = {}  # looked up once a cycle, not once a delivery
        for handle in dict.fromkeys(d.handle for d in due):
            signers[handle] = self.signer_for(handle)
        self._signers, self._ready = signers, due
        started = self._start_ready()
        self._sign_ahead()
        return started

    def _sign_ahead(self) -> None:
        """Start signing each row of _ready (the next to go out); forget those no longer
        there (another cycle found them not due, or the worker is stopping)."""
        ready = {delivery.id: delivery for delivery in self._ready}
        # A row just started is in flight: its attempt takes the headers.
        for row in [row for row in self._ahead if row not in ready and row not in self._in_flight]:
            self._ahead.pop(row)[1].cancel()
        now = self.clock().timestamp()
        for row, delivery in ready.items():
            if row not in self._ahead:
                task = asyncio.create_task(
                    self.client.post_headers(
                        delivery.inbox,
                        delivery.body,
                        self._signers[delivery.handle],
                        rfc9421=delivery.rfc9421,
                    )
                )
                task.add_done_callback(_retrieve)
                self._ahead[row] = (now, task)

    async def _signed_ahead(self, delivery: delivery_queue.Delivery) -> dict[str, str] | None:
        """The headers signed ahead for `delivery`, if they are fresh; None: sign now."""
        ahead = self._ahead.pop(delivery.id, None)
        if ahead is None:
            return None
        asked_at, task = ahead
        if task.cancelled() or self.clock().timestamp() - asked_at > SIGNED_AHEAD_MAX_AGE:
            task.cancel()
            return None
        try:
            return await task
        except Exception:  # the signing failed: post() signs again and reports it
            return None

    def _start_ready(self) -> int:
        """Start deliveries of _ready, in turn order, while the limits leave room."""
        started = 0
        position = 0
        while position < len(self._ready) and len(self._in_flight) < self.max_total:
            delivery = self._ready[position]
            if self._per_host[delivery.host] >= self.max_per_host:
                position += 1
                continue
            del self._ready[position]
            self._per_host[delivery.host] += 1
            signer = self._signers[delivery.handle]
            self._in_flight[delivery.id] = asyncio.create_task(self._attempt(delivery, signer))
            self._chained.add(delivery.id)
            started += 1
        if not self._chain:
            self._ready = []  # stepped by hand (tests): each cycle starts only what fits
        return started

    async def drain(self) -> None:
        """Wait for every delivery in flight and record it (tests step the queue with this)."""
        await asyncio.gather(*self._in_flight.values(), return_exceptions=True)
        await self._record_delivered()

    async def _record_delivered(self) -> None:
        done, self._delivered = self._delivered, []
        if done:
            now = self.clock().timestamp()
            await self.db(lambda db: delivery_queue.delivered(db, done, now))

    async def _attempt(self, delivery: delivery_queue.Delivery, signer: Signer) -> None:
        try:
            await self._post(delivery, signer)
        except Exception:
            log.exception("delivery %s to %s failed unexpectedly", delivery.id, delivery.inbox)
        finally:
            self._in_flight.pop(delivery.id, None)
            self._per_host[delivery.host] -= 1
            if self._chain and self._ready:
                self._start_ready()
            self.wake()

    async def _post(self, delivery: delivery_queue.Delivery, signer: Signer) -> None:
        retry_after: float | None = None
        try:
            result = await self.client.post(
                delivery.inbox,
                delivery.body,
                signer,
                rfc9421=delivery.rfc9421,
                signed=await self._signed_ahead(delivery),
            )
            status, retry_after = result.status, result.retry_after
            error = result.problem()
        except FetchFailed as exc:
            status, error = 0, str(exc)
        now = self.clock().timestamp()
        if 200 <= status < 300:
            self._delivered.append((delivery.id, delivery.host))
            return
        attempts = delivery.attempts + 1
        if status == 401 and delivery.rfc9421 and attempts < MAX_ATTEMPTS:
            # An older Amity, or a peer wrongly taken for one: RSA from now on, at once.
            log.warning(
                "%s refused an RFC 9421 signature (%s); retrying with RSA", delivery.inbox, error
            )

            def fall_back(db: Database) -> None:
                delivery_queue.fall_back_to_rsa(db, delivery.id)
                delivery_queue.failed(db, delivery, error, now, now, PROBE_INTERVAL)

            await self.db(fall_back)
            return
        if is_permanent_failure(status) or attempts >= MAX_ATTEMPTS:
            log.warning(
                "delivery to %s is dead after %d attempts: %s", delivery.inbox, attempts, error
            )
            # A host that answers (a 401 to the end) is not unavailable; one that fails is.
            exhausted = not is_permanent_failure(status) and status != 401

            def dead(db: Database) -> None:
                delivery_queue.failed(db, delivery, error, None, now, PROBE_INTERVAL)
                if exhausted:
                    delivery_queue.mark_unavailable(db, delivery.host, now, PROBE_INTERVAL)

            await self.db(dead)
            return
        delay = max(retry_delay(attempts, self.jitter(), self.first_retry), retry_after or 0.0)
        if status == 401:  # the operator can often fix this one (a key the peer cannot get)
            log.warning(
                "delivery to %s refused, retried in %.0f s: %s", delivery.inbox, delay, error
            )
        await self.db(
            lambda db: delivery_queue.failed(db, delivery, error, now + delay, now, PROBE_INTERVAL)
        )


def _retrieve(task: asyncio.Task[dict[str, str]]) -> None:
    """Take a dropped signing task's error, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
