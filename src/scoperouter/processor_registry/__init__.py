"""The processor registry: load, validate and compile ``routes.yaml``."""

from scoperouter.processor_registry.compiled import (
    CompiledInput,
    CompiledProcessor,
    CompiledRegistry,
    compile_registry,
)
from scoperouter.processor_registry.loader import LoadedConfig, load_config, load_config_text
from scoperouter.processor_registry.models import RoutesSpec
from scoperouter.processor_registry.relations import InMemoryRelations, RelationStore

__all__ = [
    "CompiledInput",
    "CompiledProcessor",
    "CompiledRegistry",
    "InMemoryRelations",
    "LoadedConfig",
    "RelationStore",
    "RoutesSpec",
    "compile_registry",
    "load_config",
    "load_config_text",
]
