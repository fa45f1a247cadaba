"""Build and sign one Apple Wallet pass (.pkpass with pass.strings in 22 locales, manifest,
detached PKCS#7 signature) — the work behind every pass_url fetch and PassKit update.
Target: ≤ 50 ms p95. Also the Google "Save to Google Wallet" JWT.

Credentials are throwaway (a CA, a WWDR stand-in, a 2048-bit Pass Type ID key made here); no
database is needed: the builders are pure.
"""

import datetime
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def add_arguments(parser):
    group = parser.add_argument_group("wallet")
    group.add_argument("--passes", type=int, default=300, help="passes built and signed per repetition")


def _setup():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalnest.settings.base")
    import django

    django.setup()


def _credentials():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    def name(common):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject, issuer, public_key, signing_key, ca):
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signing_key, hashes.SHA256())
        )

    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    wwdr = certificate("Bench WWDR", "Bench WWDR", root_key.public_key(), root_key, True)
    pass_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = certificate("Pass Type ID: pass.bench", "Bench WWDR", pass_key.public_key(), root_key, False)
    return pass_key, leaf, wwdr


def _p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


def run(args) -> dict:
    _setup()
    from apps.wallet.passes import apple, google
    from apps.wallet.passes.content import PassContent
    from apps.wallet.passes.credentials import AppleSigner, GoogleIssuer

    pass_key, leaf, wwdr = _credentials()
    signer = AppleSigner("pass.bench", "BENCHTEAM1", leaf, pass_key, wwdr)
    issuer = GoogleIssuer("3388000000000000001", "bench@example.iam.gserviceaccount.com", pass_key)
    figures = {"apple_p50_ms": [], "apple_p95_ms": [], "google_jwt_p95_ms": [], "pkpass_bytes": []}
    for _repetition in range(args.repeat):
        apple_samples, google_samples = [], []
        for index in range(args.passes):
            content = PassContent(
                serial_number=f"wps_bench{index:06d}",
                merchant_id="mer_bench",
                merchant_name="Bench Pets",
                member_name="Noor Haddad",
                points_balance=500 + index,
                tier_name="Gold",
                referral_code="REF2345678",
                referral_url="https://bench-pets.myshopify.com/?ref=REF2345678",
                locale="en",
            )
            started = time.perf_counter()
            body = apple.apple_pass_build(
                content, signer=signer, web_service_url="https://wallet.example/wallet/passkit",
                authentication_token="t" * 43,
            )  # fmt: skip
            apple_samples.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            google.save_jwt(content, issuer=issuer, logo_url="https://wallet.example/logo.png", origins=[])
            google_samples.append((time.perf_counter() - started) * 1000)
        figures["apple_p50_ms"].append(round(statistics.median(apple_samples), 2))
        figures["apple_p95_ms"].append(round(_p95(apple_samples), 2))
        figures["google_jwt_p95_ms"].append(round(_p95(google_samples), 2))
        figures["pkpass_bytes"].append(len(body))
    figures["passes_per_repetition"] = args.passes
    return figures
