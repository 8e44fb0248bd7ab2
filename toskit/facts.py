"""Facts the roles gather from hosts (pyinfra custom facts)."""

from pyinfra.api import FactBase


class ContainerDisk(FactBase):
    """The whole disk (e.g. /dev/vda, /dev/nvme0n1) holding /var/lib, where containers write."""

    def command(self) -> str:
        return ('src=$(findmnt -no SOURCE -T /var/lib) && '
                'parent=$(lsblk -ndo PKNAME "$src" 2>/dev/null); '
                'echo "/dev/${parent:-${src#/dev/}}"')

    def process(self, output):
        return output[0].strip() if output else None


class CgroupLimits(FactBase):
    """The limits the kernel enforces on a cgroup (cgroup v2 files), or None if it does not exist."""

    FILES = ("memory.max", "memory.swap.max", "pids.max", "cpu.max", "io.max")

    def command(self, path: str) -> str:
        reads = " ".join(f'"$d/{name}"' for name in self.FILES)
        return f'd={path}; if [ -d "$d" ]; then for f in {reads}; do echo "$(basename "$f")=$(tr "\\n" ";" < "$f")"; done; fi'

    def process(self, output):
        limits = dict(line.split("=", 1) for line in output if "=" in line)
        return {k: v.rstrip(";") for k, v in limits.items()} or None
