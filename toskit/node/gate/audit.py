"""The gate's audit log: one JSON line per event, append-only and hash-chained, in the session's home
(the tenant's encrypted volume: it travels with hibernation and never sits on a node's disk).

Each entry holds the sha256 of the one before ("prev"; the first, GENESIS) and its own ("hash": of
its canonical JSON without "hash"), so an entry changed, removed, inserted or reordered breaks the
chain at that line; `verify` names the first broken link. It guards against an injected or mistaken
edit, not against the tenant, who owns the file and could write a whole new chain (README: the
gate's threat model).

    tos-gate-verify [PATH]   verify the chain (default: ~/.tos/gate-audit.jsonl); exit 0 intact, 1 broken
"""

import hashlib
import json
import os
import sys
import time

GENESIS = "0" * 64
DEFAULT_PATH = os.path.join(os.environ.get("HOME", "/home/session"), ".tos", "gate-audit.jsonl")


def _digest(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":")).encode()).hexdigest()


class AuditLog:
    def __init__(self, path: str = DEFAULT_PATH):
        self.path = path
        self._last, self._seq = self._tail()

    def _tail(self) -> tuple[str, int]:
        """The last entry's hash and number (a log that does not verify is continued from its last line:
        the break stays where it is, for `verify` to name)."""
        last, seq = GENESIS, 0
        try:
            with open(self.path, "rb") as f:
                for line in f:
                    try:
                        entry = json.loads(line)
                        last, seq = entry["hash"], entry["seq"]
                    except (ValueError, KeyError, TypeError):
                        continue
        except FileNotFoundError:
            pass
        return last, seq

    def append(self, event: str, **fields) -> dict:
        entry = {"seq": self._seq + 1, "at": round(time.time(), 3), "event": event, **fields, "prev": self._last}
        entry["hash"] = _digest(entry)
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry, sort_keys=True, ensure_ascii=True) + "\n").encode())
            os.fsync(fd)  # on the volume before the event's effect (a command runs after "approved")
        finally:
            os.close(fd)
        self._last, self._seq = entry["hash"], entry["seq"]
        return entry


def verify(path: str) -> tuple[int, str | None]:
    """(entries that verify, None) or (the number of the first broken line, why)."""
    prev, count = GENESIS, 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            try:
                entry = json.loads(line)
            except ValueError:
                return number, "not JSON"
            if not isinstance(entry, dict) or "hash" not in entry or "prev" not in entry:
                return number, "not an audit entry"
            if entry["prev"] != prev:
                return number, "its prev is not the hash of the line before (a line removed, inserted or moved)"
            if entry["hash"] != _digest(entry):
                return number, "its content does not match its hash (the line was changed)"
            if entry.get("seq") != number:
                return number, f"it is entry {entry.get('seq')} at line {number}"
            prev, count = entry["hash"], number
    return count, None


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else DEFAULT_PATH
    try:
        count, broken = verify(path)
    except FileNotFoundError:
        print(f"tos-gate-verify: {path}: no audit log (no command was staged yet)", file=sys.stderr)
        return 1
    if broken:
        print(f"tos-gate-verify: {path}: line {count} breaks the chain: {broken}")
        return 1
    print(f"tos-gate-verify: {path}: {count} entries, chain intact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
