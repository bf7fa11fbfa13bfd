from django.urls import path

from ownership import views

urlpatterns = [
    path("customers/<int:pk>/", views.customer_ownership, name="customer_ownership"),
    path("customers/<int:pk>/sharing/", views.customer_sharing, name="customer_sharing"),
    path("review/", views.review_run_list, name="review_run_list"),
    path("review/start/", views.review_run_start, name="review_run_start"),
    path("review/outcomes/", views.review_outcomes, name="review_outcomes"),
    path("review/<int:pk>/", views.review_run_detail, name="review_run_detail"),
    path("what-if/", views.policy_what_if, name="policy_what_if"),
    path("what-if/apply/", views.policy_what_if_apply, name="policy_what_if_apply"),
]
