from django.urls import path

from allocation import views

urlpatterns = [
    path("register/", views.register, name="register"),
    path("pool/", views.pool, name="pool"),
    path("pool/claim/", views.claim, name="pool_claim"),
    path("customers/<int:pk>/release/", views.release, name="customer_release"),
    # Reassignment requests (转移申请)
    path("customers/<int:pk>/transfer/", views.customer_transfer, name="customer_transfer"),
    path(
        "registrations/<int:pk>/transfer/",
        views.registration_transfer,
        name="registration_transfer",
    ),
    # Registrations outside the rep's territory: the rep's outcome page, the manager's queue
    path(
        "registrations/<int:pk>/",
        views.registration_outcome,
        name="registration_outcome",
    ),
    path("registrations/pending/", views.registration_queue, name="registration_queue"),
    path(
        "registrations/<int:pk>/decide/",
        views.registration_decide,
        name="registration_decide",
    ),
    path("requests/", views.request_list, name="request_list"),
    path("requests/queue/", views.request_queue, name="request_queue"),
    path("requests/queue/approve/", views.request_bulk_approve, name="request_bulk_approve"),
    path("requests/<int:pk>/", views.request_detail, name="request_detail"),
    path("requests/<int:pk>/decide/", views.request_decide, name="request_decide"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request_withdraw"),
    # Allocation (分配) and the manager's team view
    path("allocation/", views.allocation_pool, name="allocation_pool"),
    path("allocation/suggest/", views.allocation_suggest, name="allocation_suggest"),
    path("allocation/one/", views.allocation_one, name="allocation_one"),
    path("allocation/bulk/", views.allocation_bulk, name="allocation_bulk"),
    path("manager/team/", views.team_overview, name="team_overview"),
]
