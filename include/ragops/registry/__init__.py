"""The registry: what is indexed, every run, and (in later revisions) releases, events and audits."""

from ragops.registry.db import Registry
from ragops.registry.lease import Lease, registry_lock
from ragops.registry import models

__all__ = ["Lease", "Registry", "registry_lock", "models"]
