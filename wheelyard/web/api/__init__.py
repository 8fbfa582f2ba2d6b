"""The management JSON API under ``/api/v1`` (FastAPI, with an OpenAPI document)."""
