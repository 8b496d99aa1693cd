"""Connectors: batch importers turning external open data into NGSI-LD entities."""
