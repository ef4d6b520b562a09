"""The JSON API under /api/v1: one package per resource, each with its routes and schemas."""
