"""One session channel carried across a hop: a starlette WebSocket on the near side (the browser's,
or the gateway's at the node), a websockets client connection on the far side (the node's, or the
agent's). Text messages pass both ways unchanged until either side closes, or `stop` says the
channel must end; then both are closed, the near side last (its close code is the last word).

Shared by the portal and the node API (toskit/node/nodeapi/relay.py is a link to this file).
"""

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

NORMAL = 1000


async def relay(near: WebSocket, far, heard=None, stop=None, vet=None, seen=None) -> None:
    """Accepts the near side, relays, and closes both sides (`far` too, if accepting fails).
    `heard`: called on each message from the near side; `stop`: a coroutine function whose coroutine
    returns a close code when the channel must end before either side ends it; `vet`: a coroutine
    function given each message from the near side, returning what to send on (None: nothing); `seen`:
    called with each message from the far side."""
    async def inward():
        async for message in near.iter_text():
            if heard is not None:
                heard()
            if vet is not None:
                message = await vet(message)
            if message is not None:
                await far.send(message)

    async def outward():
        async for message in far:
            text = message if isinstance(message, str) else message.decode()
            if seen is not None:
                seen(text)
            await near.send_text(text)

    tasks, stopping, code = [], None, NORMAL
    try:
        await near.accept()
        tasks = [asyncio.create_task(inward()), asyncio.create_task(outward())]
        if stop is not None:
            stopping = asyncio.create_task(stop())
            tasks.append(stopping)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if stopping is not None and stopping.done():
            code = stopping.result()
    finally:
        for task in tasks:
            task.cancel()
        # Both sides closed in a task of their own: the close handshakes end even if this one is cancelled
        # (a server shutting down), and their timeouts never cancel this task.
        await asyncio.shield(asyncio.create_task(_close(tasks, far, near, code)))


async def _close(tasks: list, far, near: WebSocket, code: int) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)  # a side's end, or its error, ends the channel
    await far.close()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await near.close(code)
