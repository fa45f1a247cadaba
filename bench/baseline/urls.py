"""The project's URLs plus the benchmark's bare DRF view (see `bench/baseline/wsgi.py`)."""

from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalnest.urls import urlpatterns as project_urlpatterns


class BareView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, points_balance FROM users WHERE merchant_id = (SELECT id FROM merchants WHERE "
                "shop_domain = %s) AND shopify_customer_id = %s LIMIT 1",
                [request.query_params.get("shop", ""), request.query_params.get("logged_in_customer_id", "")],
            )
            row = cursor.fetchone()
        return Response({"id": row[0], "points_balance": row[1]} if row else {})


urlpatterns = [path("bench/bare", BareView.as_view()), *project_urlpatterns]
