"""The API contract of city-os: an OpenAPI 3.1 document generated from the router.

Layer: openapi/ (documentation, no I/O). Each room declares its routes in a ``Paths`` table
(``declare.py``); ``registry.py`` lists the tables; ``document.py`` walks the application's
router and renders, for every route, the operation its room declared, with the NGSI-LD data
types of ETSI GS CIM 009 v1.9.1 as component schemas (``ngsild_types.py``, ``cityos_types.py``).
A route without a declaration is still listed (flagged ``x-cityos-undocumented``), and
``check_routes`` names each such route and each declaration without a route.
"""
