"""How bad data is reported: host, key, value, why, and the fix; every problem of a run at once."""

SITE_PREFIX = "site_"  # a site's own keys and groups: never read by a role, never refused


class DataError(ValueError):
    def __init__(self, host: str, key: str, value, reason: str, fix: str):
        super().__init__(f"host {host}: {key} = {value!r} {reason}\n  fix: {fix}")
        self.host, self.key, self.value, self.reason, self.fix = host, key, value, reason, fix


class DataErrors(DataError):
    """Every problem found in one check (all hosts, all keys); caught as a DataError too."""

    def __init__(self, errors: list):
        self.errors = list(errors)
        count = f"{len(self.errors)} problem{'s' if len(self.errors) != 1 else ''}"
        ValueError.__init__(self, f"{count} in the site's data; no host was contacted:\n"
                         + "\n".join(str(e) for e in self.errors))


def raise_all(errors: list) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise DataErrors(errors)


def where(key: str) -> str:
    return "in group_data/ or in the inventory"


class SourceError(DataError):
    """A problem with a data file itself (it does not load, or its shape is wrong), not one key."""

    def __init__(self, source: str, reason: str, fix: str):
        ValueError.__init__(self, f"{source}: {reason}\n  fix: {fix}")
        self.host, self.key, self.value, self.reason, self.fix = None, source, None, reason, fix
