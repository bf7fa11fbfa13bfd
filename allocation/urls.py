from django.urls import path

from allocation import views

urlpatterns = [
    path("register/", views.register, name="register"),
    path("pool/", views.pool, name="pool"),
    path("pool/claim/", views.claim, name="pool_claim"),
    path("customers/<int:pk>/release/", views.release, name="customer_release"),
]
