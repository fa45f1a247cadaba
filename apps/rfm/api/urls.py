from django.urls import path

from . import views

urlpatterns = [
    path("rfm/thresholds", views.RfmThresholdsApi.as_view(), name="thresholds"),
    path("rfm/thresholds/preview", views.RfmThresholdsPreviewApi.as_view(), name="thresholds-preview"),
    path("rfm/forecast", views.ChurnForecastApi.as_view(), name="forecast"),
    path("rfm/scores/refresh", views.RfmScoresRefreshApi.as_view(), name="scores-refresh"),
    path("rfm/segments", views.RfmSegmentsApi.as_view(), name="segments"),
    path("rfm/transitions", views.RfmTransitionsApi.as_view(), name="transitions"),
    path("rfm/model", views.ChurnModelApi.as_view(), name="model"),
    path("rfm/settings", views.RfmSettingsApi.as_view(), name="settings"),
    path("rfm/stores", views.RfmStoreComparisonApi.as_view(), name="stores"),
    path("rfm/experiments", views.RfmExperimentListApi.as_view(), name="experiments"),
    path("rfm/experiments/<str:experiment_id>/stop", views.RfmExperimentStopApi.as_view(), name="experiment-stop"),
]
