"""Quotas on the tenant's real I/O path, proven by load from inside live sessions: its home (the
encrypted volume over NFS, so also its traffic to storage) and its network beyond the node.

Each rate is paired with a control: the same transfer outside the tenant's limits (root on the
node, on the same volume or the same destination) runs clearly faster, so a rate held at the
quota is the quota's doing. The expected values are the tenant's data, read here; the audit
does not import the roles that set them.
"""

import shlex

import pytest

from tests.audit.sessions import egress_of, inspect, quotas_of, tenant_cgroup, tenant_of
from tests.audit.test_tenant_network import rule_counters

pytestmark = pytest.mark.groups("nodes")
# A rate may pass its quota by this much: io.max and nft's limit both let a first burst through.
TOLERANCE = 1.2
# The neighbour, moving data at the same time on the same node, keeps at least this share of its
# own quota; a tenant moving data alone gets at least as much of its own.
NEIGHBOUR_SHARE = 0.5
SECONDS = 4  # each transfer lasts about this long at its quota
MAX_MIB = 64  # and moves no more than this (a site's real quotas are far above the lab's)
TIMED = "start=$(date +%s.%N); {command}; end=$(date +%s.%N); echo $start $end"


def volume_of(host, tenant: str) -> str:
    return next(m["Source"] for m in inspect(host, tenant)["Mounts"] if m["Destination"] == "/home/session")


def dd_command(tenant: str, path: str, mode: str, mib: int) -> str:
    """A direct (uncached) dd of mib MiB, timed, printing '<tenant> <start> <end>'."""
    io = (f"if=/dev/zero of={path} oflag=direct" if mode == "write" else f"if={path} of=/dev/null iflag=direct")
    return f"echo {tenant} $({TIMED.format(command=f'dd {io} bs=1M count={mib} status=none')})"


def in_session(tenant: str, command: str) -> str:
    return f"docker exec --user session tos-session-{tenant} sh -c {shlex.quote(command)}"


def rates(output: str, mib: int) -> dict:
    found = {}
    for line in output.splitlines():
        tenant, start, end = line.split()
        found[tenant] = mib * 2**20 / (float(end) - float(start))
    return found


@pytest.fixture
def volume_rates(target, host, pair, request):
    """Write then read rates: A and B at once in their sessions, then root on A's volume (the
    control). Measured once per node; written files are removed."""
    cache = request.config.__dict__.setdefault("_tos_volume_rates", {})
    if target.name not in cache:
        a, b = pair
        measured = {}
        # One file, written then read back: about SECONDS at the write quota, less to read it.
        mib = min(MAX_MIB, max(2, SECONDS * max(quotas_of(target, t).volume_write for t in pair) // 2**20))
        for mode in ("write", "read"):
            both = " & ".join(in_session(t, dd_command(t, "$HOME/tos-io-probe", mode, mib)) for t in pair)
            control = dd_command("root", f"{volume_of(host, a)}/tos-io-control", mode, mib)
            measured[mode] = {"mib": mib, **rates(host.check_output(f"{both}; wait"), mib),
                              "control": rates(host.check_output(control), mib)["root"]}
        host.run(f"rm -f {volume_of(host, a)}/tos-io-control {volume_of(host, a)}/tos-io-probe "
                 f"{volume_of(host, b)}/tos-io-probe")
        cache[target.name] = measured
    return cache[target.name]


@pytest.mark.alone
@pytest.mark.control("tos-quota-07")
@pytest.mark.parametrize("mode", ["write", "read"])
def test_the_session_is_held_to_its_volume_rate_and_the_neighbour_keeps_its_own(target, pair, volume_rates, mode):
    a, b = pair
    seen = volume_rates[mode]
    limit_a, limit_b = (getattr(quotas_of(target, t), f"volume_{mode}") for t in pair)
    assert seen["control"] > 1.5 * limit_a, (
        f"control: root {mode}s A's volume at only {seen['control'] / 2**20:.1f} MiB/s, too slow to show a "
        f"{limit_a / 2**20:.1f} MiB/s quota; lower volume_{mode} in the tenants' quotas")
    assert seen[a] <= TOLERANCE * limit_a, f"{a} {mode}s its home at {seen[a] / 2**20:.2f} MiB/s, quota {limit_a / 2**20:.2f}"
    assert seen[b] >= NEIGHBOUR_SHARE * limit_b, (
        f"the neighbour {b} {mode}s at {seen[b] / 2**20:.2f} MiB/s, under half its {limit_b / 2**20:.2f} quota")
    assert seen[b] <= TOLERANCE * limit_b


@pytest.mark.control("tos-quota-07")
@pytest.mark.parametrize("member", ["A", "B"])
def test_the_volume_rates_are_on_the_volumes_own_devices_in_the_kernel(target, host, pair, member):
    """On the volume's mapping or the loop device under it (systemd resolves a device-mapper
    device to the one it is built on): either is the tenant's alone."""
    tenant = pair["AB".index(member)]
    q = quotas_of(target, tenant)
    block = f"/sys/class/block/$(basename $(readlink -f /dev/mapper/tos-vol-{tenant}))"
    devices = host.check_output(f"cat {block}/dev {block}/slaves/*/dev").split()
    io_max = host.file(f"{tenant_cgroup(tenant_of(target, tenant))}/io.max").content_string.splitlines()
    assert any(line.startswith(f"{device} rbps={q.volume_read} wbps={q.volume_write} ")
               for line in io_max for device in devices), (tenant, devices, io_max)


OUTSIDE_PORTS = {"network_in": 8081, "network_out": 8082}  # the lab's stand-in: a source and a sink
# Prints the rate after the first `warm` bytes: a policer's bucket lets its depth through at
# once (nft's byte limit: a second of the rate plus the burst), which says nothing of the rate.
TRANSFER = """import socket, sys, time
address, port, size, warm, direction = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
s = socket.create_connection((address, port), timeout=60)
moved, warmed, block = 0, None, bytes(16384)
while moved < size:
    if direction == "network_in":
        data = s.recv(16384)
        if not data:
            break
        moved += len(data)
    else:
        s.sendall(block)
        moved += len(block)
    if warmed is None and moved >= warm:
        warmed = (moved, time.monotonic())
if direction == "network_out":
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):  # the sink closes once it has all of it
        pass
print(moved, (moved - warmed[0]) / (time.monotonic() - warmed[1]) if warmed else 0)
"""


def transfer(host, runner: str, address: str, direction: str, size: int, warm: int) -> float:
    argv = f"python3 -c {shlex.quote(TRANSFER)} {address} {OUTSIDE_PORTS[direction]} {size} {warm} {direction}"
    moved, rate = host.check_output(f"{runner} {argv}").split()
    assert int(moved) >= size, f"{direction}: moved {moved} of {size} bytes"
    return float(rate)


@pytest.mark.alone
@pytest.mark.control("tos-quota-08")
@pytest.mark.parametrize("direction", ["network_in", "network_out"])
def test_the_sessions_network_beyond_the_node_is_held_to_its_rate(target, host, pair, direction):
    _, b = pair
    allowed = [rule for rule in egress_of(target, b)
               if set(OUTSIDE_PORTS.values()) <= set(rule.get("ports") or OUTSIDE_PORTS.values())]
    if not allowed:
        pytest.skip(f"needs tenant B with egress to a source and a sink on ports {sorted(OUTSIDE_PORTS.values())} "
                    "(the lab's data)")
    address = allowed[0]["network"].split("/")[0]
    limit = getattr(quotas_of(target, b), direction)
    warm = 2 * limit  # past the bucket's depth: then the rate is the policer's
    size = warm + min(SECONDS * limit, MAX_MIB * 2**20)
    control = transfer(host, "", address, direction, size, warm)
    assert control > 1.5 * limit, (f"control: the node itself moves only {control / 1024:.0f} KiB/s to {address}, too "
                                   f"slow to show a {limit / 1024:.0f} KiB/s quota; lower {direction}")
    before = rule_counters(host)
    rate = transfer(host, f"docker exec --user session tos-session-{b}", address, direction, size, warm)
    dropped = rule_counters(host)["tos-quota-08"] - before["tos-quota-08"]
    assert rate <= TOLERANCE * limit, f"{b}'s {direction} ran at {rate / 1024:.0f} KiB/s, quota {limit / 1024:.0f}"
    # And near it, not far below (a policer set in the wrong unit, or one that stalls TCP). The
    # lab saw 0.89-0.93 of the quota, with the node itself at 18-37 MiB/s.
    assert rate >= NEIGHBOUR_SHARE * limit, f"{b}'s {direction} ran at only {rate / 1024:.0f} KiB/s of {limit / 1024:.0f}"
    assert dropped > 0, "the quota's rule dropped nothing: the rate was not the firewall's doing"
