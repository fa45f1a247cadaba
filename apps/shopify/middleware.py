"""Framing policy for every HTML page (RELIABILITY A9, D2).

Embedded admin pages set `Content-Security-Policy: frame-ancestors https://{shop}
https://admin.shopify.com` themselves (apps.shopify.views). Every other HTML response — Django
admin, error pages, anything added later — gets `frame-ancestors 'none'`, the CSP equivalent of
the `X-Frame-Options: DENY` that Django's clickjacking middleware already sends.
"""

NO_FRAMING = "frame-ancestors 'none'"


class FrameAncestorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        content_type = response.get("Content-Type", "")
        if content_type.startswith("text/html") and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = NO_FRAMING
        return response
