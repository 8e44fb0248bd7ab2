"""The gateway's certificate in a real OpenBao: the operator side (toskit/vault_gateway.py) makes
the PKI engine, the CA, the gateway's PKI role, policy and AppRole; the gateway side (tos-cert)
enrols, makes its key and CSR and has Vault sign it. Run as the deploy and the timer would."""

import datetime
import importlib.machinery
import importlib.util
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from toskit.host_certificates import TOOL_SOURCE

NAME = "gateway.tos.lab"


def load_tool():
    loader = importlib.machinery.SourceFileLoader("tos_cert", str(TOOL_SOURCE))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("tos_cert", loader))
    loader.exec_module(module)
    return module


def access(gateway="gw1", name=NAME, ttl="2h"):
    from toskit.vault_gateway import GatewayAccess
    return GatewayAccess(gateway, "127.0.0.1/32", name, ttl, "1h", "pki")


@pytest.fixture
def tool(settings, tmp_path, monkeypatch):
    """tos-cert with the gateway's credentials and certificate under tmp_path, enrolled the deploy's way:
    (module, settings, the gateway certificate's entry)."""
    from toskit.vault import role_id, wrapped_secret_id
    from toskit.vault_gateway import apply
    apply(settings, settings.client(), access())
    module = load_tool()
    creds = tmp_path / "vault"
    creds.mkdir()
    monkeypatch.setattr(module, "CREDENTIALS", creds)
    monkeypatch.setattr(module, "reload_nginx", lambda: None)
    client = settings.client()
    (creds / "role-id").write_text(role_id(settings, client, access().role))
    (creds / "wrapping-token").write_text(wrapped_secret_id(settings, client, access().role))
    spec = {"path": str(tmp_path / "tls" / "gateway.pem"), "pki_mount": "pki", "pki_role": access().role,
            "name": NAME, "ttl": "2h", "reload": "nginx"}
    conf = {"vault_addr": settings.addr, "vault_ca_file": settings.ca_file, "approle_mount": "approle",
            "certificates": {"gateway": spec}}
    module.enrol(conf)
    return module, conf, spec


def test_apply_makes_what_a_gateway_needs_and_then_nothing_is_left_to_do(settings):
    from toskit.vault_gateway import apply, drift
    wanted = access("gw2")
    assert {"write pki role tos-gateway-gw2", "write policy tos-gateway-gw2", "write approle tos-gateway-gw2"} <= \
        set(drift(settings, settings.client(), wanted))
    apply(settings, settings.client(), wanted)
    assert drift(settings, settings.client(), wanted) == [] and apply(settings, settings.client(), wanted) == []


def test_the_gateway_gets_a_short_lived_certificate_for_its_name_and_its_key_stays_private(tool, settings, tmp_path):
    from toskit.vault_gateway import ca_pem
    module, conf, spec = tool
    assert module.renew(conf, spec).startswith("renewed (no certificate)")
    pem = (tmp_path / "tls" / "gateway.pem").read_bytes()
    assert stat.S_IMODE((tmp_path / "tls" / "gateway.pem").stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(pem, None)
    cert, *chain = x509.load_pem_x509_certificates(pem)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()  # the key made here
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [NAME]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(hours=2, minutes=1)
    ca = x509.load_pem_x509_certificate(ca_pem(settings, settings.client(), "pki").encode())
    cert.verify_directly_issued_by(ca)  # chains to Vault's CA
    assert chain[-1] == ca
    assert module.renew(conf, spec).startswith("valid until")  # not due: nothing changes
    assert (tmp_path / "tls" / "gateway.pem").read_bytes() == pem


def test_a_gateway_cannot_have_another_name_signed(tool):
    module, conf, spec = tool
    with pytest.raises(module.Refused, match="signing"):
        module.renew(conf, {**spec, "name": "bank.example.com"}, force=True)


def test_a_gateway_cannot_have_its_certificate_outlive_its_role(tool):
    import hvac.exceptions
    module, conf, _ = tool
    client = module.login(conf)
    csr = module.x509.CertificateSigningRequestBuilder().subject_name(module.x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False).sign(
        ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    with pytest.raises(hvac.exceptions.Forbidden):  # not_after would bypass the role's max_ttl
        client.secrets.pki.sign_certificate(access().role, csr, NAME, extra_params={"not_after": "2034-01-01T00:00:00Z"},
                                            mount_point="pki")
    signed = client.secrets.pki.sign_certificate(access().role, csr, NAME, extra_params={"ttl": "8760h"},
                                                 mount_point="pki")["data"]["certificate"]
    cert = x509.load_pem_x509_certificate(signed.encode())
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(hours=2, minutes=1)  # capped


def test_a_gateway_can_do_nothing_else_in_vault(tool, settings):
    import hvac.exceptions
    module, conf, _ = tool
    client = module.login(conf)
    with pytest.raises(hvac.exceptions.Forbidden):  # issue: Vault would make (and see) the key
        client.secrets.pki.generate_certificate(access().role, NAME, mount_point="pki")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.transit.list_keys()


def _self_signed(name: str, start: datetime.datetime, hours: int) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(start).not_valid_after(start + datetime.timedelta(hours=hours))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("name,started_hours_ago,hours,due", [
    (NAME, 1, 72, None),                       # fresh
    (NAME, 47, 72, None),                      # just under two thirds
    (NAME, 49, 72, "past 67% of its life"),    # past two thirds
    ("old.tos.lab", 1, 72, "it names"),        # the gateway's name changed
])
def test_a_certificate_is_due_past_two_thirds_of_its_life_or_for_another_name(name, started_hours_ago, hours, due):
    module = load_tool()
    cert = x509.load_pem_x509_certificate(_self_signed(name, NOW - datetime.timedelta(hours=started_hours_ago), hours))
    found = module.due({"name": NAME}, cert, NOW)
    assert (found is None) if due is None else (due in found)
    assert module.due({"name": NAME}, None, NOW) == "no certificate"


def test_a_certificate_for_the_configured_name_is_due_for_the_name_a_deploy_is_about_to_set():
    module = load_tool()
    cert = x509.load_pem_x509_certificate(_self_signed(NAME, NOW - datetime.timedelta(hours=1), 72))
    assert module.due({"name": NAME}, cert, NOW) is None
    assert "it names ['gateway.tos.lab'], not new.tos.lab" in module.due({"name": NAME}, cert, NOW, "new.tos.lab")


def test_a_secret_id_past_half_its_life_is_not_fresh(settings):
    from toskit.vault import secret_id_fresh, wrapped_secret_id
    from toskit.vault_gateway import apply
    apply(settings, settings.client(), access("gw5", name="gw5.tos.lab"))
    client = settings.client()
    assert not secret_id_fresh(settings, client, "tos-gateway-gw5", "1h")  # none yet
    wrapped_secret_id(settings, client, "tos-gateway-gw5")  # lives 1h (the role's secret_id_ttl)
    assert secret_id_fresh(settings, client, "tos-gateway-gw5", "1h")
    assert not secret_id_fresh(settings, client, "tos-gateway-gw5", "3h")  # 1h left is not half of 3h


def test_the_operator_policy_is_enough_for_a_gateway(settings, tmp_path):
    from conftest import as_operator

    from toskit.vault_gateway import apply, drift
    root, operator = settings.client(), as_operator(settings, tmp_path)
    apply(operator, operator.client(), access("gw7", name="gw7.tos.lab"))
    assert drift(settings, root, access("gw7", name="gw7.tos.lab")) == []
    from toskit.vault import secret_id_fresh, wrapped_secret_id
    wrapped_secret_id(operator, operator.client(), "tos-gateway-gw7")  # what a deploy's enrolment does
    assert secret_id_fresh(operator, operator.client(), "tos-gateway-gw7", "1h")  # what every deploy asks
    with pytest.raises(Exception, match="permission denied"):  # the operator never signs a certificate
        operator.client().secrets.pki.generate_certificate("tos-gateway-gw7", "gw7.tos.lab", mount_point="pki")


def test_one_certificate_refused_leaves_the_others_renewed_and_status_names_each(tool, tmp_path, monkeypatch, capsys):
    module, conf, spec = tool
    conf["certificates"]["other"] = {**spec, "path": str(tmp_path / "tls" / "other.pem"), "name": "bank.example.com"}
    monkeypatch.setattr(module, "settings", lambda: conf)
    assert module.main(["renew"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("gateway: renewed (no certificate)") and "tos-cert renew other: Vault refused" in err
    assert module.main(["status"]) == 1  # "other" is still due
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"gateway: {NAME}: valid until") and out[1].endswith("other.pem: no certificate; due")
    assert module.main(["status", "gateway"]) == 0
    assert module.main(["renew", "nope"]) == 1 and "keeps no certificate 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("interval, refused", [("1h", None), ("7h", None), ("8h", "cluster"), ("23h", "cluster")])
def test_the_renewal_timer_must_come_round_inside_each_certificates_last_third(interval, refused):
    from toskit.host_certificates import Certificate, check_renewal
    from toskit.schema import DataError
    certificates = {"gateway": Certificate("/g.pem", "pki", "r", NAME, "72h", "nginx"),
                    "cluster": Certificate("/c.pem", "tos-cluster-pki", "r", "tos-gateway-gw1", "24h", None)}
    if refused is None:
        check_renewal("gw1", "gateway_renew_interval", interval, certificates)
        return
    with pytest.raises(DataError) as raised:
        check_renewal("gw1", "gateway_renew_interval", interval, certificates)
    message = str(raised.value)
    assert "gw1" in message and "gateway_renew_interval" in message and f"certificate {refused}, which lives 24h" in message


def test_a_certificate_for_a_group_is_0640_for_that_group_from_its_first_byte(tmp_path, monkeypatch):
    """The broker's client certificate (0640 root:tos-broker): mode and group set on the file before
    it takes the certificate's name; a group that does not exist is refused and nothing is written."""
    import grp
    import os
    module = load_tool()
    group = grp.getgrgid(os.getgid()).gr_name  # a group that exists here (root's, in CI)
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(module.os, "replace", lambda src, dst: seen.append(os.stat(src)) or real_replace(src, dst))
    target = tmp_path / "cluster-client.pem"
    module.write_private(target, b"key and chain", group)
    assert target.read_bytes() == b"key and chain"
    assert [(stat.S_IMODE(s.st_mode), s.st_gid) for s in seen] == [(0o640, os.getgid())]
    module.write_private(tmp_path / "private.pem", b"x")  # control: without a group, root's alone
    assert stat.S_IMODE((tmp_path / "private.pem").stat().st_mode) == 0o600
    with pytest.raises(module.Refused, match="group 'no-such-group-here' does not exist"):
        module.write_private(tmp_path / "other.pem", b"x", "no-such-group-here")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster-client.pem", "private.pem"]
