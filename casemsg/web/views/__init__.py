"""Operator pages, one module per area; every project page takes the project's slug from the URL."""
