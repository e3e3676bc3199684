"""Import of eFlows4HPC TOSCA topologies (``alien_dsl_3_0_0``) into our workflow format."""

from hpcwaas.catalog.tosca.convert import ConvertedTopology, convert_topology, is_topology
from hpcwaas.catalog.tosca.problems import ToscaImportError, ToscaProblem

__all__ = [
    "ConvertedTopology",
    "ToscaImportError",
    "ToscaProblem",
    "convert_topology",
    "is_topology",
]
