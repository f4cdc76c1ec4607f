"""Celery app and thin lifecycle tasks: load by id, call one domain function, decide retry."""
