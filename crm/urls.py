"""Every URL of Guishu; the only module (with settings and celery) that knows every app."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from crm import funnel_views, notification_views, views

handler403 = "crm.views.error_403"
handler404 = "crm.views.error_404"
handler500 = "crm.views.error_500"

urlpatterns = [
    path("", views.home, name="home"),
    path("team/", views.team, name="team"),
    path("notifications/", notification_views.notification_list, name="notification_list"),
    path("notifications/read/", notification_views.notification_read, name="notification_read"),
    path("notifications/badge/", notification_views.notification_badge, name="notification_badge"),
    path("funnel/", funnel_views.funnel_report, name="funnel_report"),
    path("funnel/export/", funnel_views.funnel_export, name="funnel_export"),
    path("funnel/snapshot/", funnel_views.funnel_snapshot_take, name="funnel_snapshot_take"),
    path("customers/", include("crm.customer_urls")),
    path("imports/", include("crm.import_urls")),
    path("ownership/", include("ownership.urls")),
    path("disputes/", include("disputes.urls")),
    path("", include("allocation.urls")),
    path("handover/", include("handover.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/language/", views.set_language, name="set_language"),
    path(
        "accounts/login/",
        login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
]
