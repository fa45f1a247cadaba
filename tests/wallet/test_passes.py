"""The pure builders: a signed .pkpass that openssl verifies against the throwaway CA, and a
Google Save JWT verified with the service account's public key."""

import hashlib
import io
import json
import shutil
import subprocess
import zipfile

import jwt
import pytest

from apps.core.locales import LOCALES
from apps.wallet.passes import apple, google
from apps.wallet.passes.content import PassContent
from apps.wallet.passes.credentials import apple_signer, google_issuer
from apps.wallet.passes.strings import PASS_STRINGS

from .conftest import PASS_TYPE_ID, TEAM_ID

CONTENT = PassContent(
    serial_number="wps_01TEST",
    merchant_id="mer_01TEST",
    merchant_name="Alpha Pets",
    member_name="Noor Haddad",
    points_balance=500,
    tier_name="Gold",
    referral_code="REF2345678",
    referral_url="https://alpha-pets.myshopify.com/?ref=REF2345678",
    locale="en",
)


def build_apple(**overrides) -> zipfile.ZipFile:
    body = apple.apple_pass_build(
        CONTENT,
        signer=apple_signer(),
        web_service_url="https://wallet.loyalnest.test/wallet/passkit",
        authentication_token="a" * 43,
        **overrides,
    )
    return zipfile.ZipFile(io.BytesIO(body))


def openssl_verify(tmp_path, signature: bytes, manifest: bytes, root_path: str) -> subprocess.CompletedProcess:
    (tmp_path / "signature").write_bytes(signature)
    (tmp_path / "manifest.json").write_bytes(manifest)
    return subprocess.run(
        ["openssl", "smime", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "signature"),
         "-content", str(tmp_path / "manifest.json"), "-CAfile", root_path, "-purpose", "any", "-out", "/dev/null"],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_pkpass_has_the_store_card_fields_barcode_and_web_service(apple_wallet):
    archive = build_apple()
    pass_json = json.loads(archive.read("pass.json"))

    assert pass_json["passTypeIdentifier"] == PASS_TYPE_ID
    assert pass_json["teamIdentifier"] == TEAM_ID
    assert pass_json["serialNumber"] == "wps_01TEST"
    assert pass_json["formatVersion"] == 1
    assert pass_json["description"] == "PASS_DESCRIPTION"
    card = pass_json["storeCard"]
    assert card["primaryFields"][0]["value"] == 500
    assert card["primaryFields"][0]["label"] == "LABEL_POINTS"
    assert card["primaryFields"][0]["changeMessage"] == "CHANGE_POINTS"
    assert card["secondaryFields"][0]["value"] == "Noor Haddad"
    assert card["auxiliaryFields"][0]["value"] == "Gold"
    assert all("changeMessage" not in field for field in card["secondaryFields"] + card["backFields"])
    assert pass_json["barcodes"][0] == {
        "message": "https://alpha-pets.myshopify.com/?ref=REF2345678",
        "format": "PKBarcodeFormatQR",
        "altText": "REF2345678",
        "messageEncoding": "iso-8859-1",
    }
    assert pass_json["webServiceURL"] == "https://wallet.loyalnest.test/wallet/passkit"
    assert pass_json["authenticationToken"] == "a" * 43
    assert pass_json["backgroundColor"] == "rgb(31, 81, 153)"
    assert {"icon.png", "icon@2x.png", "logo.png"} <= set(archive.namelist())
    assert archive.read("icon.png").startswith(b"\x89PNG")


def test_manifest_lists_the_sha1_of_every_file(apple_wallet):
    archive = build_apple()
    manifest = json.loads(archive.read("manifest.json"))

    files = set(archive.namelist()) - {"manifest.json", "signature"}
    assert set(manifest) == files
    for name in files:
        assert manifest[name] == hashlib.sha1(archive.read(name)).hexdigest(), name  # noqa: S324  (Apple's format)


def test_pass_strings_for_all_22_locales_with_rtl_texts(apple_wallet):
    archive = build_apple()
    lprojs = {name.split(".lproj/")[0] for name in archive.namelist() if name.endswith(".lproj/pass.strings")}

    assert len(LOCALES) == 22
    assert lprojs == {("zh-Hans" if locale == "zh-CN" else locale) for locale in LOCALES}
    arabic = archive.read("ar.lproj/pass.strings").decode("utf-16")
    assert '"LABEL_POINTS" = "النقاط";' in arabic
    assert '"CHANGE_POINTS" = "لديك الآن %@ نقطة";' in arabic
    assert '"LABEL_POINTS" = "נקודות";' in archive.read("he.lproj/pass.strings").decode("utf-16")
    assert '"LABEL_POINTS" = "امتیاز";' in archive.read("fa.lproj/pass.strings").decode("utf-16")
    assert '"LABEL_POINTS" = "积分";' in archive.read("zh-Hans.lproj/pass.strings").decode("utf-16")
    # Every locale has every key, and no locale silently repeats the English texts.
    for locale, texts in PASS_STRINGS.items():
        assert set(texts) == set(PASS_STRINGS["en"]), locale
        if locale != "en":
            assert texts["LABEL_REFERRAL"] != PASS_STRINGS["en"]["LABEL_REFERRAL"], locale
    # Labels follow the reading direction (right-aligned in ar/he/fa).
    pass_json = json.loads(archive.read("pass.json"))
    assert pass_json["storeCard"]["secondaryFields"][0]["textAlignment"] == "PKTextAlignmentNatural"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing (.ci/run installs it)")
def test_signature_verifies_with_openssl_against_the_ca(apple_wallet, tmp_path):
    archive = build_apple()

    result = openssl_verify(tmp_path, archive.read("signature"), archive.read("manifest.json"), apple_wallet.root_path)

    assert result.returncode == 0, result.stderr
    assert "Verification successful" in result.stderr


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing (.ci/run installs it)")
def test_signature_does_not_verify_a_tampered_manifest(apple_wallet, tmp_path):
    archive = build_apple()
    manifest = json.loads(archive.read("manifest.json"))
    manifest["pass.json"] = "0" * 40

    result = openssl_verify(tmp_path, archive.read("signature"), json.dumps(manifest).encode(), apple_wallet.root_path)

    assert result.returncode != 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing (.ci/run installs it)")
def test_signature_does_not_verify_against_another_ca(apple_wallet, tmp_path):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from .conftest import _certificate, _pem

    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = _certificate("Test Root CA", "Test Root CA", stranger_key.public_key(), stranger_key, ca=True)
    (tmp_path / "stranger.pem").write_text(_pem(stranger))
    archive = build_apple()

    result = openssl_verify(tmp_path, archive.read("signature"), archive.read("manifest.json"),
                            str(tmp_path / "stranger.pem"))  # fmt: skip

    assert result.returncode != 0


def test_google_save_jwt_is_rs256_with_class_and_object(google_wallet):
    issuer = google_issuer()
    token = google.save_jwt(CONTENT, issuer=issuer, logo_url="https://wallet.loyalnest.test/logo.png",
                            origins=["https://alpha-pets.myshopify.com"])  # fmt: skip

    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, google_wallet.public_key(), algorithms=["RS256"], audience="google")
    assert claims["typ"] == "savetowallet"
    assert claims["iss"] == "wallet@loyalnest-test.iam.gserviceaccount.com"
    assert claims["origins"] == ["https://alpha-pets.myshopify.com"]
    [loyalty_class] = claims["payload"]["loyaltyClasses"]
    [loyalty_object] = claims["payload"]["loyaltyObjects"]
    assert loyalty_class["id"] == "3388000000012345678.mer_01TEST"
    assert loyalty_class["programName"] == "Alpha Pets"
    assert loyalty_object["id"] == "3388000000012345678.wps_01TEST"
    assert loyalty_object["classId"] == loyalty_class["id"]
    assert loyalty_object["loyaltyPoints"]["balance"] == {"int": 500}
    assert loyalty_object["barcode"] == {
        "type": "QR_CODE",
        "value": "https://alpha-pets.myshopify.com/?ref=REF2345678",
        "alternateText": "REF2345678",
    }
    translated = {
        t["language"]: t["value"] for t in loyalty_object["loyaltyPoints"]["localizedLabel"]["translatedValues"]
    }
    assert len(translated) == 21 and translated["ar"] == "النقاط" and translated["he"] == "נקודות"
    assert {"tier", "referral"} == {module["id"] for module in loyalty_object["textModulesData"]}


def test_google_jwt_signed_by_another_key_is_refused(google_wallet):
    from cryptography.hazmat.primitives.asymmetric import rsa

    token = google.save_jwt(CONTENT, issuer=google_issuer(), logo_url="https://x.test/l.png", origins=[])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, other.public_key(), algorithms=["RS256"], audience="google")
