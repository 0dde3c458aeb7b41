"""Route tests: YAML files of events and the decisions a registry must make about them
(``scoperouter test``; docs/route-tests.md).

:mod:`~scoperouter.routetests.spec` is the file format, :mod:`~scoperouter.routetests.load`
finds and loads files against their registry, :mod:`~scoperouter.routetests.check` runs the
cases through the planner (and the cascade) and :mod:`~scoperouter.routetests.output`
renders the results as text, JSON or JUnit XML.
"""
