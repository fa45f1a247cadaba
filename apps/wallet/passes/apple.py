"""Apple Wallet store cards (`.pkpass`) built with py-pkpass: pass.json, images, pass.strings in
22 locales, manifest.json with the SHA-1 of every file, and a detached PKCS#7 signature.

Pure: no database access. py-pkpass reads the certificate and key from files on every pass;
`_SignedPass` signs with objects parsed once (see `credentials`), the same PKCS#7 call.
"""

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from py_pkpass.models import Alignment, Barcode, BarcodeFormat, Field, Pass, StoreCard

from .content import PassContent
from .credentials import AppleSigner
from .images import pass_images
from .strings import LPROJ, pass_strings_file

NATURAL = "PKTextAlignmentNatural"  # right-aligned in ar, he and fa, left elsewhere


class _SignedPass(Pass):
    def _createSignatureCrypto(self, manifest, certificate, key, wwdr_certificate, password):
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest.encode("utf-8"))
            .add_signer(certificate, key, hashes.SHA256())
            .add_certificate(wwdr_certificate)
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
        )


def _field(key: str, value, label: str, *, alignment=NATURAL, change_message: str = "") -> Field:
    field = Field(key, value, label)
    field.textAlignment = alignment
    if change_message:
        field.changeMessage = change_message
    else:
        del field.changeMessage  # an empty changeMessage is an error on the device
    return field


def _rgb(color: str) -> str:
    value = color.lstrip("#")
    return f"rgb({int(value[0:2], 16)}, {int(value[2:4], 16)}, {int(value[4:6], 16)})"


def apple_pass_build(
    content: PassContent, *, signer: AppleSigner, web_service_url: str, authentication_token: str
) -> bytes:
    """The signed `.pkpass` (a zip) of a customer's store card."""
    card = StoreCard()
    card.primaryFields.append(
        _field("points", content.points_balance, "LABEL_POINTS", alignment=Alignment.CENTER,
               change_message="CHANGE_POINTS")
    )  # fmt: skip
    card.secondaryFields.append(_field("member", content.member_name, "LABEL_MEMBER"))
    if content.tier_name:
        card.auxiliaryFields.append(_field("tier", content.tier_name, "LABEL_TIER"))
    card.backFields.append(_field("referral", content.referral_url, "LABEL_REFERRAL"))
    card.backFields.append(_field("about", "ABOUT", ""))

    apple_pass = _SignedPass(
        card,
        passTypeIdentifier=signer.pass_type_identifier,
        organizationName=content.merchant_name,
        teamIdentifier=signer.team_identifier,
    )
    apple_pass.serialNumber = content.serial_number
    apple_pass.description = "PASS_DESCRIPTION"
    apple_pass.logoText = content.merchant_name
    apple_pass.backgroundColor = _rgb(content.background_color)
    apple_pass.foregroundColor = _rgb(content.foreground_color)
    apple_pass.labelColor = _rgb(content.label_color)
    apple_pass.barcode = Barcode(
        content.referral_url, BarcodeFormat.QR, altText=content.referral_code, messageEncoding="iso-8859-1"
    )
    apple_pass.webServiceURL = web_service_url
    apple_pass.authenticationToken = authentication_token
    apple_pass.sharingProhibited = True
    apple_pass._files.update(pass_images(content.background_color))
    for locale, lproj in LPROJ.items():
        apple_pass._files[f"{lproj}.lproj/pass.strings"] = pass_strings_file(locale)
    archive = apple_pass.create(signer.certificate, signer.private_key, signer.wwdr_certificate, None)
    return archive.getvalue()
