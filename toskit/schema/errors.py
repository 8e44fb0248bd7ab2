"""How bad data is reported: host, key, value, why, and the fix; every problem of a run at once."""

SITE_PREFIX = "site_"  # a site's own keys and groups: never read by a role, never refused


def shown(value, limit: int = 120) -> str:
    """A value as the site wrote it, cut short: a message stays one readable line."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        text = f"<{type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[:limit] + "...(cut)"


class DataError(ValueError):
    def __init__(self, host: str, key: str, value, reason: str, fix: str):
        key_text = key if key.isprintable() and key.strip() == key and key else repr(key)
        super().__init__(f"host {host}: {key_text} = {shown(value)} {reason}\n  fix: {fix}")
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


WHERE = "in group_data/ or in the inventory"


class SourceError(DataError):
    """A problem with a data file itself (it does not load, or its shape is wrong), not one key."""

    def __init__(self, source: str, reason: str, fix: str):
        ValueError.__init__(self, f"{source}: {reason}\n  fix: {fix}")
        self.host, self.key, self.value, self.reason, self.fix = None, source, None, reason, fix
