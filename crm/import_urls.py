"""Customer import pages, included at /imports/."""

from django.urls import path

from crm import import_views

urlpatterns = [
    path("", import_views.import_list, name="import_list"),
    path("<int:pk>/", import_views.import_job, name="import_job"),
    path("<int:pk>/progress/", import_views.import_job_progress, name="import_job_progress"),
    path("<int:pk>/confirm/", import_views.import_job_confirm, name="import_job_confirm"),
    path("<int:pk>/errors.csv", import_views.import_job_errors, name="import_job_errors"),
]
