from django.urls import path

from handover import views

urlpatterns = [
    # The manager's side: departures and their plans
    path("", views.departure_list, name="handover_departure_list"),
    path("new/", views.departure_new, name="handover_departure_new"),
    path("<int:pk>/", views.departure_detail, name="handover_departure_detail"),
    path("<int:pk>/reassign/", views.departure_reassign, name="handover_departure_reassign"),
    path("<int:pk>/report/", views.departure_report, name="handover_departure_report"),
    # The leaving rep and the successors
    path("my-tasks/", views.my_tasks, name="handover_my_tasks"),
    path("incoming/", views.incoming, name="handover_incoming"),
    path("incoming/accept/", views.incoming_accept, name="handover_incoming_accept"),
    path("tasks/<int:pk>/", views.task_detail, name="handover_task_detail"),
    path("tasks/<int:pk>/accept/", views.task_accept, name="handover_task_accept"),
    path("tasks/<int:pk>/refuse/", views.task_refuse, name="handover_task_refuse"),
    path("tasks/<int:pk>/done/", views.task_done, name="handover_task_done"),
    path("tasks/<int:pk>/confirm/", views.task_confirm, name="handover_task_confirm"),
    path("tasks/<int:pk>/send-back/", views.task_send_back, name="handover_task_send_back"),
]
