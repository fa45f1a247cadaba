from django.urls import path

from . import views

urlpatterns = [
    path("theme-extensions", views.ThemeExtensionConfigureApi.as_view(), name="theme-extensions"),
]
