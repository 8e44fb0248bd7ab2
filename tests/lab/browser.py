"""A real browser for the lab's front door: Debian's chromium, driven by selenium through Debian's
chromedriver (nothing downloaded). It resolves only the lab's names (to this machine's loopback,
where the lab forwards them); every other name fails, so no page can reach outside the lab. It
trusts the CAs given, in an NSS database of its own (WebAuthn and `__Host-` cookies need a
certificate the browser really trusts, not an ignored error)."""

import os
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"  # the README shows them


def trust_store(home: Path, cas: dict) -> None:
    """An NSS database in home/.pki/nssdb trusting each CA (name -> PEM text) for TLS servers."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    for name, pem in cas.items():
        path = home / f"{name}.pem"
        path.write_text(pem)
        subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-t", "C,,", "-n", name, "-i", str(path)],
                       check=True, capture_output=True)


@contextmanager
def chromium(names: list, cas: dict, width: int = 1280, height: int = 800):
    """A headless chromium mapping each of `names` to 127.0.0.1 and nothing else, trusting `cas`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    with tempfile.TemporaryDirectory(prefix="tos-browser-") as tmp:
        home = Path(tmp)
        trust_store(home, cas)
        rules = ", ".join([f"MAP {name} 127.0.0.1" for name in names] + ["MAP * ~NOTFOUND"])
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-default-apps", "--disable-features=Translate,MediaRouter,OptimizationHints",
                     f"--host-resolver-rules={rules}", f"--user-data-dir={home / 'profile'}",
                     f"--window-size={width},{height}", "--lang=en-US"):
            options.add_argument(flag)
        service = Service(CHROMEDRIVER, env={**os.environ, "HOME": str(home)})
        driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.set_page_load_timeout(60)
            yield driver
        finally:
            driver.quit()


def wait_for(driver, css: str, seconds: float = 60):
    """The element, once visible; else a failure saying where the browser is and what it shows
    (and a screenshot in docs/screenshots/failed-*.png, git-ignored)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait
    try:
        return WebDriverWait(driver, seconds).until(ready.visibility_of_element_located((By.CSS_SELECTOR, css)))
    except TimeoutException:
        screenshot(driver, "failed-" + "".join(c if c.isalnum() else "-" for c in css)[:40])
        shown = driver.find_element(By.TAG_NAME, "body").text[:400] if driver.find_elements(By.TAG_NAME, "body") else ""
        raise AssertionError(f"no visible {css} after {seconds:.0f} s at {driver.current_url}; the page shows: "
                             f"{shown!r}") from None


def screenshot(driver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def sign_in(driver, portal_url: str, username: str, password: str, provider_title: str = "TOS Lab SSO") -> None:
    """What a person does: Level-0, the provider's button, then OpenBao's own login page (userpass)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    driver.get(portal_url + "/")
    driver.find_element(By.LINK_TEXT, f"SIGN IN WITH {provider_title.upper()}").click()
    Select(wait_for(driver, "select[data-test-select=auth-method]")).select_by_value("userpass")
    wait_for(driver, "input[name=username]").send_keys(username)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
    driver.find_element(By.ID, "auth-submit").click()


def authenticator(driver):
    """A passkey device with a screen lock, as Chromium's DevTools emulate it (WebAuthn.*)."""
    from selenium.webdriver.common.virtual_authenticator import Protocol, Transport, VirtualAuthenticatorOptions
    options = VirtualAuthenticatorOptions(protocol=Protocol.CTAP2, transport=Transport.INTERNAL, has_resident_key=True,
                                          has_user_verification=True, is_user_verified=True)
    driver.add_virtual_authenticator(options)


def until(driver, condition, seconds: float = 30):
    """condition(driver) turns true; a page reloading meanwhile is no failure (elements read during
    the reload fail with a stale reference or an inspector error: the wait reads again)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, seconds, ignored_exceptions=[WebDriverException]).until(condition)


def add_passkey(driver, portal_url: str, name: str) -> None:
    """Adds a passkey named `name` and waits until the list shows one more of that name (a person
    may hold several of one name, e.g. from an earlier run)."""
    driver.get(portal_url + "/passkeys")
    field = wait_for(driver, "#passkey-name")

    def named() -> int:
        return sum(1 for row in driver.find_elements("css selector", "table.readout-table tbody tr")
                   if row.find_element("tag name", "td").text == name)
    before = named()
    field.clear()
    field.send_keys(name)
    driver.find_element("id", "passkey-add").click()
    until(driver, lambda d: named() == before + 1)


def passkey_sign_in(driver, portal_url: str) -> None:
    driver.get(portal_url + "/")
    wait_for(driver, "#passkey-sign-in").click()


def sign_out(driver, portal_url: str) -> None:
    driver.get(portal_url + "/approved")
    driver.find_element("css selector", "form[action='/signout'] button").click()
    wait_for(driver, "ul.choices")
