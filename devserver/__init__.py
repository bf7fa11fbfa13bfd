"""Run Guishu on a fresh machine: embedded PostgreSQL and Redis, a process supervisor
(`python -m devserver.run`) and a test launcher (`python -m devserver.test`).

Nothing here is imported by the Django project itself; it only prepares the environment
(`DATABASE_URL`, `REDIS_URL`) that `crm.settings` reads.
"""
