"""The gateway's pydantic models, one module per vocabulary:

- `airmiles_requests`: what we send AIR MILES. Strict: unknown fields, bad pairs and bad ids
  are refused before any call. The partner API takes the same shapes for its PUT bodies and
  FIND/COUNT queries, so a request is checked once, where it comes in.
- `airmiles_answers`: what AIR MILES answers (`AirMiles...` classes). Tolerant: unknown
  fields ignored, absent paging totals accepted, as the upstream page asks.
- `partner`: what the partner API answers (`...Answer`, `...View`) and its own bodies. Their
  class names are the schema names of openapi.json: the published contract.

This file imports nothing: import the module you need.
"""
