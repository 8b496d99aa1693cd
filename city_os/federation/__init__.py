"""Context sources and federation (GS CIM 009 v1.9.1 §4.3.6, §5.9–§5.11).

``model`` holds the parsed CSourceRegistration (pure); ``registrations*`` its validation and
service; ``index`` the per-replica registration index that distributed operations consult.
"""
