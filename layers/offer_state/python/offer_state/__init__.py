"""The offer_state package: the AIR MILES Offer State API client and what the gateway's
functions share (models, settings, errors, audit).

Import the module you need (`offer_state.client`, `offer_state.models`, ...): this file
imports nothing, so a function pays only for what it uses at cold start.
"""

__version__ = "0.1.0"
