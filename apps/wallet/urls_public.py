"""Endpoints devices call, mounted at /wallet/: signed pass downloads, the PassKit web service
(webServiceURL = <WALLET_PUBLIC_URL>/wallet/passkit) and the Google class logo."""

from django.urls import path

from . import views

app_name = "wallet_public"

urlpatterns = [
    path("passes/<str:token>", views.pass_download, name="pass"),
    path("logos/<str:merchant_id>.png", views.logo, name="logo"),
    path(
        "passkit/v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>/<str:serial_number>",
        views.passkit_registration,
        name="passkit-registration",
    ),
    path(
        "passkit/v1/devices/<str:device_library_identifier>/registrations/<str:pass_type_identifier>",
        views.passkit_serials,
        name="passkit-serials",
    ),
    path(
        "passkit/v1/passes/<str:pass_type_identifier>/<str:serial_number>",
        views.passkit_latest,
        name="passkit-latest",
    ),
    path("passkit/v1/log", views.passkit_log, name="passkit-log"),
]
