"""Facts the roles gather from hosts (pyinfra custom facts)."""

import json
import shlex

from pyinfra.api import FactBase


class ContainerDisk(FactBase):
    """The whole disk (e.g. /dev/vda, /dev/nvme0n1) holding /var/lib, where containers write."""

    def command(self) -> str:
        return ('src=$(findmnt -no SOURCE -T /var/lib) && '
                'parent=$(lsblk -ndo PKNAME "$src" 2>/dev/null); '
                'echo "/dev/${parent:-${src#/dev/}}"')

    def process(self, output):
        return output[0].strip() if output else None


# The device systemd sets a path's IO limits on: the whole disk of a partition, and the one
# device under a device-mapper mapping (a LUKS volume's loop device), as its "originating" device.
ORIGIN = ('whole() { b=$1; [ -e "/sys/class/block/$b/partition" ] && '
          'b=$(basename "$(dirname "$(readlink -f "/sys/class/block/$b")")"); echo "$b"; }; '
          'origin() { b=$(whole "$(basename "$(readlink -f "$1")")"); set -- /sys/class/block/"$b"/slaves/*; '
          '[ $# = 1 ] && [ -e "$1" ] && b=$(whole "$(basename "$1")"); cat "/sys/class/block/$b/dev"; }; ')


class CgroupLimits(FactBase):
    """The limits the kernel enforces on a cgroup (cgroup v2 files), or None if it does not exist;
    with "io" ({"maj:min": "rbps=.. wbps=.."}), the devices of `disks` ({path: "maj:min"}), and
    that of `volume` if it exists (None if not): the numbers io.max names them by."""

    FILES = ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "io.max")

    def command(self, path: str, disks: tuple = (), volume: str = "") -> str:
        # One grep prints every file as `name:line` (a loop of reads costs a process per file).
        devices = "".join(f'echo "disk:{d}:$(origin {shlex.quote(d)})"; ' for d in disks)
        if volume:
            devices += f'[ -e {shlex.quote(volume)} ] && echo "volume:$(origin {shlex.quote(volume)})"; '
        return f'cd {shlex.quote(path)} 2>/dev/null && {{ grep -H "" {" ".join(self.FILES)}; {ORIGIN}{devices}}} || true'

    def process(self, output):
        if not output:
            return None
        limits = dict.fromkeys(self.FILES, "")  # an empty file (io.max without limits) prints nothing
        limits.update(disks={}, volume=None)
        for line in output:
            name, _, value = line.partition(":")
            if name in self.FILES:
                limits[name] = f"{limits[name]};{value}" if limits[name] else value
            elif name == "disk":
                disk, major, minor = value.rsplit(":", 2)
                limits["disks"][disk] = f"{major}:{minor}"
            elif name == "volume":
                limits["volume"] = value
        limits["io"] = {line.split(" ", 1)[0]: line.split(" ", 1)[1].split(" riops", 1)[0]
                        for line in limits["io.max"].split(";") if line}
        return limits


class ManagedFile(FactBase):
    """A regular file's owner, group, mode and SHA-1, asked in one command (pyinfra's files.put
    asks three facts: File, Directory and Sha1File). None if absent; {"type": "other"} if
    something other than a regular file is there."""

    def command(self, path: str) -> str:
        p = shlex.quote(path)
        return (f"if [ -f {p} ] && [ ! -L {p} ]; then stat -c '%U %G %a' {p} && sha1sum < {p}; "
                f"elif [ -e {p} ] || [ -L {p} ]; then echo other; fi")

    def process(self, output):
        if not output:
            return None
        if output[0].strip() == "other":
            return {"type": "other"}
        user, group, mode = output[0].split()
        return {"type": "file", "user": user, "group": group, "mode": int(mode, 8), "sha1": output[1].split()[0]}


class VolumeSizes(FactBase):
    """{tenant: bytes} of the volume files on the share (mounted on first use); {} if none."""

    def command(self, path: str) -> str:
        # timeout: a share that does not answer must not hang the deploy (the mount is `hard`).
        return f'timeout 30 find {path}/ -maxdepth 1 -name "*.luks" -printf "%f %s\\n" 2>/dev/null || true'

    def process(self, output):
        sizes = {}
        for line in output:
            name, _, size = line.rpartition(" ")
            if name.endswith(".luks") and size.isdigit():
                sizes[name[:-len(".luks")]] = int(size)
        return sizes


class VaultLogin(FactBase):
    """Can the host log in to Vault with the credential it holds? 'ok', else the reason. `tool`:
    the host's Vault client (tos-session on nodes, tos-cert on gateways); None if it is missing.
    `args`: the tool's further arguments (tos-cert's --portal: the portal's AppRole)."""

    def command(self, tool: str = "tos-session", args: str = "") -> str:
        return f"{tool} vault-check {args} 2>&1 || true"

    def requires_command(self, tool: str = "tos-session", args: str = "") -> str:
        return tool

    def process(self, output):
        return output[-1].strip() if output else "no answer"


class HostCertificate(FactBase):
    """'valid' when the host's certificate `certificate` (an ID of tos-cert's), for `cert_name`, needs no
    renewal, else 'due: why' (tos-cert status); None when the tool is not installed yet."""

    def command(self, tool: str, certificate: str, cert_name: str) -> str:
        return (f'out=$({tool} status {shlex.quote(certificate)} --name {shlex.quote(cert_name)} 2>&1) '
                f'&& echo valid || echo "due: $out"')

    def requires_command(self, tool: str, certificate: str, cert_name: str) -> str:
        return tool

    def process(self, output):
        return output[-1].strip() if output else None


class PasswdEntry(FactBase):
    """One account's passwd entry as a dict, or None. (pyinfra's Users fact inspects every
    account on the host, which takes seconds under emulation; this reads one line.)"""

    def command(self, account: str) -> str:
        return f"getent passwd {account} || true"

    def process(self, output):
        if not output or ":" not in output[0]:
            return None
        name, _, uid, gid, gecos, home, shell = output[0].split(":")
        return {"name": name, "uid": int(uid), "gid": int(gid), "home": home, "shell": shell}


class HeldPackages(FactBase):
    """Packages apt will not upgrade (apt-mark hold)."""

    @staticmethod
    def default():
        return []

    def command(self) -> str:
        return "apt-mark showhold"

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class TmpfsMounted(FactBase):
    """Is a tmpfs mounted at this path?"""

    @staticmethod
    def default():
        return False

    def command(self, path: str) -> str:
        return f"findmnt -n -o FSTYPE --mountpoint {path} || true"

    def process(self, output):
        return bool(output) and output[0].strip() == "tmpfs"


class DockerNetworks(FactBase):
    """{name: {"bridge", "icc", "label", "containers"}} of the named Docker networks that exist,
    from one `docker network inspect` (Docker's JSON)."""

    def command(self, names: tuple) -> str:
        quoted = " ".join(shlex.quote(n) for n in names)
        # Names that do not exist make inspect fail; it still prints the ones that do.
        return f"docker network inspect {quoted} 2>/dev/null || true"

    def requires_command(self, names: tuple) -> str:
        return "docker"

    @staticmethod
    def default():
        return {}

    def process(self, output):
        networks = json.loads("\n".join(output) or "[]")
        return {n["Name"]: {"bridge": n["Options"].get("com.docker.network.bridge.name"),
                            "icc": n["Options"].get("com.docker.network.bridge.enable_icc", "true"),
                            "label": (n.get("Labels") or {}).get("tos.tenant"),
                            "containers": len(n.get("Containers") or {})} for n in networks}


class FirewallState(FactBase):
    """'loaded' if the live nftables table is exactly what its unit loaded (counters aside) and
    the rules file is the one it loaded; else 'drifted' (a rule changed or flushed, the table
    gone, or a file that was never loaded, e.g. a reload that failed)."""

    def command(self, table: str, rules: str, loaded: str) -> str:
        t, r, l = shlex.quote(table), shlex.quote(rules), shlex.quote(loaded)
        return (f"nft --stateless list table inet {t} 2>/dev/null | cmp -s - {l}.table "
                f"&& sha256sum {r} 2>/dev/null | cmp -s - {l}.sha256 && echo loaded || echo drifted")

    def process(self, output):
        return output[0].strip() if output else "drifted"
