"""Throwaway credentials (a CA, Apple's WWDR stand-in, a Pass Type ID certificate, an APNs key,
a Google service-account key), made fresh per test session, never stored in the repository."""

import datetime
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from tests.factories import CustomerFactory, VipTierFactory

PASS_TYPE_ID = "pass.test.loyalnest"
TEAM_ID = "TEAMID1234"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(signing_key, hashes.SHA256())


def _pem(certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class AppleCredentials:
    root_path: str
    root_pem: str
    wwdr_pem: str
    certificate_pem: str
    key_pem: str


@pytest.fixture(scope="session")
def apple_ca(tmp_path_factory) -> AppleCredentials:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _certificate("Test Root CA", "Test Root CA", root_key.public_key(), root_key, ca=True)
    wwdr_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wwdr = _certificate("Test WWDR Intermediate", "Test Root CA", wwdr_key.public_key(), root_key, ca=True)
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = _certificate(f"Pass Type ID: {PASS_TYPE_ID}", "Test WWDR Intermediate", pass_key.public_key(), wwdr_key,
                        ca=False)  # fmt: skip
    folder = tmp_path_factory.mktemp("apple")
    (folder / "root.pem").write_text(_pem(root))
    return AppleCredentials(str(folder / "root.pem"), _pem(root), _pem(wwdr), _pem(leaf), _key_pem(pass_key))


@pytest.fixture
def apple_wallet(settings, apple_ca, tmp_path):
    """Apple configured: the certificate as a file path, key and WWDR inline (both forms work)."""
    certificate_path = tmp_path / "pass.pem"
    certificate_path.write_text(apple_ca.certificate_pem)
    settings.WALLET_APPLE_PASS_TYPE_ID = PASS_TYPE_ID
    settings.WALLET_APPLE_TEAM_ID = TEAM_ID
    settings.WALLET_APPLE_CERTIFICATE = str(certificate_path)
    settings.WALLET_APPLE_KEY = apple_ca.key_pem
    settings.WALLET_APPLE_KEY_PASSWORD = ""
    settings.WALLET_APPLE_WWDR_CERTIFICATE = apple_ca.wwdr_pem
    settings.WALLET_PUBLIC_URL = "https://wallet.loyalnest.test"
    return apple_ca


@pytest.fixture(scope="session")
def google_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def google_wallet(settings, google_key):
    settings.WALLET_GOOGLE_ISSUER_ID = "3388000000012345678"
    settings.WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL = "wallet@loyalnest-test.iam.gserviceaccount.com"
    settings.WALLET_GOOGLE_PRIVATE_KEY = _key_pem(google_key)
    settings.WALLET_PUBLIC_URL = "https://wallet.loyalnest.test"
    return google_key


@pytest.fixture
def google_wallet_beta(merchant):
    """Google Wallet exports are the `google_wallet` beta feature: switched on for `merchant`."""
    from tests.slack_community.beta import beta_on

    return beta_on(merchant, "google_wallet")


@pytest.fixture(scope="session")
def apns_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def fake_apns(settings, apns_key, apple_wallet):
    from tests.fakes.apns import FakeApns

    with FakeApns() as apns:
        settings.WALLET_APNS_BASE_URL = apns.url
        settings.WALLET_APNS_KEY_ID = "KEYID12345"
        settings.WALLET_APNS_KEY = _key_pem(apns_key)
        apns.public_key = apns_key.public_key()
        yield apns


@pytest.fixture
def shopper(merchant):
    gold = VipTierFactory(merchant=merchant, name={"en": "Gold", "ar": "ذهبي"}, min_lifetime_points=0)
    return CustomerFactory(
        merchant=merchant,
        shopify_customer_id="7001",
        first_name="Noor",
        last_name="Haddad",
        points_balance=500,
        lifetime_points=900,
        vip_tier=gold,
        locale="en",
    )
