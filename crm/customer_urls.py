"""Customer pages, included at /customers/."""

from django.urls import path

from crm import customer_views

urlpatterns = [
    path("", customer_views.customer_list, name="customer_list"),
    path("check/", customer_views.customer_duplicate_check, name="customer_duplicate_check"),
    path("<int:pk>/", customer_views.customer_detail, name="customer_detail"),
    path("<int:pk>/edit/", customer_views.customer_edit, name="customer_edit"),
    path("<int:pk>/contacts/add/", customer_views.contact_add, name="customer_contact_add"),
    path("<int:pk>/follow-ups/add/", customer_views.follow_up_add, name="customer_follow_up_add"),
]
