"""`amity demo`: a small federation on loopback, to explore before running a real node.

A hub, an authority and eight schools run in this one process, each a real node with its
own port, data directory, keys and database; they federate over HTTP on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from ..federation import directory
from . import endorsement_actions
from .app import FederationSettings, create_app
from .app_state import DB
from .clock import Clock
from .demo_data import DEMO_SCHOOLS
from .listings import directory_listings
from .node import Node, init_node

T = TypeVar("T")


@dataclass
class DemoNode:
    node: Node
    runner: web.AppRunner

    async def run(self, fn: Callable[[], T]) -> T:
        """Run `fn` on this node's database thread (its connection is not shared)."""
        return await self.runner.app[DB](lambda _db: fn())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(data: Path, handle: str, kind: str, profile: dict[str, object] | None) -> DemoNode:
    port = _free_port()
    node = init_node(
        data / handle,
        handle=handle,
        base_url=f"http://127.0.0.1:{port}",
        kind=kind,
        profile=profile,
    )
    settings = FederationSettings(allow_private_network=True, poll_interval=0.2, first_retry=1.0)
    runner = web.AppRunner(create_app(node, settings), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return DemoNode(node, runner)


async def _follow(follower: DemoNode, target: DemoNode) -> None:
    actor = await target.run(target.node.actor_document)
    await follower.run(lambda: follower.node.follow(actor))


async def run_demo(data: Path, say: Callable[[str], None], timeout: float = 120.0) -> None:
    """Start the federation, wait until every school sees every other, then serve until a
    signal; everything stops cleanly."""
    say(f"Starting a hub, an authority and {len(DEMO_SCHOOLS)} schools on 127.0.0.1 ...")
    hub = await _start(data, "hub", "hub", None)
    authority = await _start(data, "ministry", "authority", None)
    schools = [await _start(data, handle, "school", profile) for handle, profile in DEMO_SCHOOLS]
    nodes = [hub, authority, *schools]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _follow(authority, hub)
        for school in schools:
            await _follow(school, hub)
        first = schools[0]
        clock = authority.node.clock
        deadline = clock().timestamp() + timeout
        if not await _wait(lambda: _converged(schools), stop, deadline, clock):
            return
        # The ministry vouches for some of the schools; the first school trusts it.
        endorsed = schools[1::2]
        for school in endorsed:
            actor = await school.run(school.node.actor_document)
            await authority.run(partial(endorsement_actions.endorse, authority.node, actor, None))
        ministry = await authority.run(authority.node.actor_document)
        await first.run(partial(endorsement_actions.trust, first.node, ministry))
        if not await _wait(lambda: _verified(first, len(endorsed)), stop, deadline, clock):
            return
        listings = await first.run(partial(_listings, first.node))
        _explain(say, data, hub, first, listings)
        await stop.wait()
        say("Stopping ...")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for demo_node in nodes:
            await demo_node.runner.cleanup()
            demo_node.node.close()


async def _wait(
    done: Callable[[], Awaitable[bool]], stop: asyncio.Event, deadline: float, clock: Clock
) -> bool:
    """Poll `done` until it holds (True) or a signal stops the demo (False)."""
    while not await done():
        if stop.is_set():
            return False
        if clock().timestamp() > deadline:
            raise RuntimeError("the demo federation did not converge")
        await asyncio.sleep(0.2)
    return True


def _listings(node: Node) -> list[dict[str, Any]]:
    return directory_listings(node, directory.Filters(), False, 50, 0)


async def _verified(school: DemoNode, count: int) -> bool:
    listings = await school.run(partial(_listings, school.node))
    return sum(1 for item in listings if item["verified"]) == count


async def _converged(schools: list[DemoNode]) -> bool:
    for school in schools:
        count = await school.run(partial(directory.count_listings, school.node.store.db))
        if count != len(schools):
            return False
    return True


def _explain(
    say: Callable[[str], None],
    data: Path,
    hub: DemoNode,
    first: DemoNode,
    listings: list[dict[str, Any]],
) -> None:
    say("")
    say(
        f"Ready: every school's directory lists the other {len(listings)} schools, "
        "relayed by the hub."
    )
    say("")
    say("The directory as seen by the school in Oaxaca, Mexico (✓: endorsed by the ministry,")
    say("an authority this school trusts):")
    for item in listings:
        langs = "/".join(item["languages"]["instruction"])
        learning = "/".join(item["languages"]["learning"]) or "-"
        mark = "✓" if item["verified"] else " "
        say(
            f"  {mark} {item['name']:<36} {item['country']}  {item['timezone']:<20} "
            f"teaches {langs:<6} learns {learning:<6} ages {item['ages'][0]}-{item['ages'][1]}"
        )
    school_data = data / first.node.config.handle
    say("")
    say("What a teacher would do next (in another terminal, while this runs):")
    say(f"  amity directory --data {school_data} --language en --age 11")
    say(f"  amity directory --data {school_data} --query climate")
    say(f"  amity directory --data {school_data} --verified")
    say(f"  amity match --data {school_data}        (partner suggestions, with the reasons)")
    say(f"  amity propose ACTOR --allow-private-network --data {school_data}")
    say(f"  amity profile show --data {school_data}")
    say(f"  open {first.node.urls.id} in a browser to see the school's public page")
    say(f"The hub is {hub.node.urls.id}. Ctrl-C stops everything.")


@contextlib.contextmanager
def demo_directory(data: Path | None) -> Iterator[Path]:
    """The given directory (which must not exist yet), or a temporary one removed at the end."""
    if data is not None:
        if data.exists():
            raise FileExistsError(f"{data} already exists; give a new directory for the demo")
        data.mkdir(parents=True)
        yield data
        return
    path = Path(tempfile.mkdtemp(prefix="amity-demo-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
