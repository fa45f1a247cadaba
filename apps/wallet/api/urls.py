from django.urls import path

from . import views

urlpatterns = [path("wallet/export", views.WalletExportApi.as_view(), name="wallet-export")]
