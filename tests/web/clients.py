"""Logged-in test clients for the page tests (Django's test client, not a browser)."""

from __future__ import annotations

from django.test import Client


def logged_in(user) -> Client:
    c = Client()
    c.force_login(user)
    return c
