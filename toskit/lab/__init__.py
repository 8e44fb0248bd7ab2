"""The TOS lab: Debian VMs under qemu, a package cache and an OpenBao server, all on this machine."""
