from django.urls import path

from ownership import views

urlpatterns = [
    path("customers/<int:pk>/", views.customer_ownership, name="customer_ownership"),
    path("customers/<int:pk>/sharing/", views.customer_sharing, name="customer_sharing"),
]
