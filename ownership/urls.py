from django.urls import path

from ownership import territory_views, views

urlpatterns = [
    path("customers/<int:pk>/", views.customer_ownership, name="customer_ownership"),
    path("customers/<int:pk>/sharing/", views.customer_sharing, name="customer_sharing"),
    path("review/", views.review_run_list, name="review_run_list"),
    path("review/start/", views.review_run_start, name="review_run_start"),
    path("review/outcomes/", views.review_outcomes, name="review_outcomes"),
    path("review/<int:pk>/", views.review_run_detail, name="review_run_detail"),
    path("what-if/", views.policy_what_if, name="policy_what_if"),
    path("what-if/apply/", views.policy_what_if_apply, name="policy_what_if_apply"),
    path("territories/", territory_views.territory_mine, name="territory_mine"),
    path("territories/simulate/", territory_views.territory_simulate, name="territory_simulate"),
    path(
        "territories/realignment/",
        territory_views.realignment_preview_view,
        name="realignment_preview",
    ),
    path(
        "territories/realignment/export.csv",
        territory_views.realignment_export,
        name="realignment_export",
    ),
    path(
        "territories/realignment/confirm/",
        territory_views.realignment_confirm,
        name="realignment_confirm",
    ),
    path(
        "territories/realignment/apply/",
        territory_views.realignment_apply_view,
        name="realignment_apply",
    ),
    path(
        "territories/realignment/exceptions/",
        territory_views.realignment_exceptions,
        name="realignment_exceptions",
    ),
    path(
        "territories/realignment/exceptions/clear/",
        territory_views.realignment_exception_clear_view,
        name="realignment_exception_clear",
    ),
]
