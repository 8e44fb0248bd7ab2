"""One session channel carried across a hop: a starlette WebSocket on the near side (the browser's,
or the gateway's at the node), a websockets client connection on the far side (the node's, or the
agent's). Text messages pass both ways unchanged until either side closes; then the other is closed.

Shared by the portal and the node API (toskit/node/nodeapi/relay.py is a link to this file).
"""

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect


async def relay(near: WebSocket, far, heard=None) -> None:
    """`heard`: called on each message from the near side."""
    async def inward():
        async for message in near.iter_text():
            if heard is not None:
                heard()
            await far.send(message)

    async def outward():
        async for message in far:
            await near.send_text(message if isinstance(message, str) else message.decode())

    tasks = [asyncio.create_task(inward()), asyncio.create_task(outward())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # a side's end, or its error, ends the channel
        await far.close()
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await near.close()
