"""Describe session-token authentication in the OpenAPI schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.shopify.auth.SessionTokenAuthentication"
    name = "shopifySessionToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "Shopify App Bridge session token (HS256, signed with the app's client secret).",
        }


class AppProxySignatureScheme(OpenApiAuthenticationExtension):
    target_class = "apps.shopify.proxy.AppProxyAuthentication"
    name = "shopifyAppProxySignature"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "query",
            "name": "signature",
            "description": (
                "Added by Shopify's app proxy: hex HMAC-SHA256 of the other query parameters "
                "(sorted key=value pairs, no separator), signed with the app's client secret."
            ),
        }
