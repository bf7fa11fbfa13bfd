from django.urls import path

from disputes import views

urlpatterns = [
    path("", views.dispute_list, name="dispute_list"),
    path("new/", views.dispute_file, name="dispute_file"),
    path("report/", views.dispute_report, name="dispute_report"),
    path("<int:pk>/", views.dispute_detail, name="dispute_detail"),
    path("<int:pk>/statement/", views.dispute_statement, name="dispute_statement"),
    path("<int:pk>/withdraw/", views.dispute_withdraw, name="dispute_withdraw"),
    path("<int:pk>/appeal/", views.dispute_appeal, name="dispute_appeal"),
    path("attachments/<int:pk>/", views.dispute_attachment, name="dispute_attachment"),
]
