"""One `tos-session reader` kept running beside the node API: a report or a channel's address answered
in ~0.1-0.2 s instead of ~0.7 s (a new Python process a call: 0.12 s interpreter, 0.3 s imports on the
lab's nodes, and a sign-in asks both). It answers reads only (tosnode/cli.py READS); every change
is still its own tos-session process, under the tenant's lock.

One question at a time (a line each way). A question not answered in time, or a reader that ended,
costs that reader: it is killed, the question answered 75, and the next one starts a new reader. A new
tos-session (the deploy installed another) is read by a new reader too.
"""

import asyncio
import json
import os

LINE_LIMIT = 2**22  # bytes of one answer: a report of every tenant of a big node fits many times over


class Reader:
    def __init__(self, tool: str, spawn: dict):
        self.tool, self.spawn = tool, spawn  # spawn: create_subprocess_exec's credentials and umask
        self._process = None
        self._program = None  # (inode, mtime, size) of the tool it runs
        self._loop = None
        self._lock = None

    def _program_now(self) -> tuple:
        found = os.stat(self.tool)
        return found.st_ino, found.st_mtime_ns, found.st_size

    async def ask(self, args: tuple, timeout: float) -> tuple[int, str, str]:
        """(exit status, output, error) as `tos-session ARGS` would have ended, within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # pipes and the lock belong to one event loop (the service has one)
            self.stop()
            self._loop, self._lock = loop, asyncio.Lock()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(self._lock.acquire(), timeout)
        except asyncio.TimeoutError:
            return 75, "", f"tos-session {args[0]} did not finish in {timeout} s (the reader was busy)"
        try:
            return await asyncio.wait_for(self._exchange(args), max(deadline - loop.time(), 0.01))
        except asyncio.TimeoutError:
            self.stop()  # its answer may still come: never read as the next question's
            return 75, "", f"tos-session {args[0]} did not finish in {timeout} s"
        finally:
            self._lock.release()

    async def _exchange(self, args: tuple) -> tuple[int, str, str]:
        process = await self._running()
        try:
            process.stdin.write(json.dumps(list(args)).encode() + b"\n")
            await process.stdin.drain()
            line = await process.stdout.readline()
        except (BrokenPipeError, ConnectionResetError, ValueError):  # ValueError: a line over LINE_LIMIT
            line = b""
        if not line.endswith(b"\n"):
            self.stop()
            return 75, "", f"tos-session reader ended (exit status {process.returncode}): see the node API's journal"
        try:
            answer = json.loads(line)
            return answer["code"], answer["out"], answer["err"]
        except (ValueError, KeyError, TypeError):
            self.stop()
            return 75, "", f"tos-session reader answered what is not an answer: {line[:200]!r}"

    async def _running(self):
        program = self._program_now()
        if self._process is not None and (self._process.returncode is not None or program != self._program):
            self.stop()
        if self._process is None:
            self._process = await asyncio.create_subprocess_exec(
                self.tool, "reader", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                limit=LINE_LIMIT, **self.spawn)
            self._program = program
        return self._process

    async def close(self) -> None:
        """The reader stopped and waited for (the service's shutdown), for 5 s at most."""
        process = self._process
        self.stop()
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), 5)
            except asyncio.TimeoutError:
                pass

    def stop(self) -> None:
        """Kills the reader, if any (SIGKILL: it holds no lock and writes nothing; one stuck in an NFS read
        is left to the kernel rather than waited on)."""
        if self._process is not None and self._process.returncode is None:
            try:
                self._process.kill()
            except ProcessLookupError:
                pass
        self._process = None
