"""NGSIv2 face of city-os: the FIWARE NGSI v2 API (as Orion 3.x/4.x serves it) on the same
entities as NGSI-LD.

Layer: a second API room beside api/. It translates v2 requests into the core services' NGSI-LD
operations (core/, through ``EntityService`` and ``QueryService``) and their results back into v2;
it never stores anything of its own. docs/ngsiv2.md documents the mapping rules.
"""
