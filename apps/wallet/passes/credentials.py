"""Certificates and keys of the wallets, from settings only (each setting holds a PEM or the
path of a PEM file). Parsed once per distinct value; nothing is ever logged."""

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from apps.core.errors import ApplicationError


class WalletNotConfigured(ApplicationError):
    code = "wallet_not_configured"
    status = 503
    default_message = _("This wallet is not available for this shop yet.")


def pem_bytes(value: str) -> bytes:
    """A PEM given inline (from the environment) or as a file path."""
    value = (value or "").strip()
    if not value:
        raise WalletNotConfigured()
    if value.startswith("-----BEGIN"):
        return value.replace("\\n", "\n").encode()
    return Path(value).read_bytes()


@dataclass(frozen=True)
class AppleSigner:
    pass_type_identifier: str
    team_identifier: str
    certificate: x509.Certificate
    private_key: object
    wwdr_certificate: x509.Certificate


@lru_cache(maxsize=4)
def _apple_signer(pass_type_id, team_id, certificate, key, password, wwdr) -> AppleSigner:
    if not pass_type_id or not team_id:
        raise WalletNotConfigured()
    return AppleSigner(
        pass_type_identifier=pass_type_id,
        team_identifier=team_id,
        certificate=x509.load_pem_x509_certificate(pem_bytes(certificate)),
        private_key=load_pem_private_key(pem_bytes(key), password=password.encode() if password else None),
        wwdr_certificate=x509.load_pem_x509_certificate(pem_bytes(wwdr)),
    )


def apple_signer() -> AppleSigner:
    """The Pass Type ID certificate, its key and Apple's WWDR intermediate (WalletNotConfigured if unset)."""
    return _apple_signer(
        settings.WALLET_APPLE_PASS_TYPE_ID,
        settings.WALLET_APPLE_TEAM_ID,
        settings.WALLET_APPLE_CERTIFICATE,
        settings.WALLET_APPLE_KEY,
        settings.WALLET_APPLE_KEY_PASSWORD,
        settings.WALLET_APPLE_WWDR_CERTIFICATE,
    )


@dataclass(frozen=True)
class GoogleIssuer:
    issuer_id: str
    service_account_email: str
    private_key: object


@lru_cache(maxsize=4)
def _google_issuer(issuer_id, email, key) -> GoogleIssuer:
    if not issuer_id or not email:
        raise WalletNotConfigured()
    return GoogleIssuer(issuer_id, email, load_pem_private_key(pem_bytes(key), password=None))


def google_issuer() -> GoogleIssuer:
    """The Google Wallet issuer and its service-account key (WalletNotConfigured if unset)."""
    return _google_issuer(
        settings.WALLET_GOOGLE_ISSUER_ID,
        settings.WALLET_GOOGLE_SERVICE_ACCOUNT_EMAIL,
        settings.WALLET_GOOGLE_PRIVATE_KEY,
    )
