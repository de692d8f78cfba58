"""Registry connectors: how the service talks to each kind of registry (list what it holds, test a connection,
name an image for the engine). One module per type; `connector_for` picks by the registry row's type."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hullscan.service.connectors.base import Connector
    from hullscan.service.secretbox import SecretBox
    from hullscan.service.storage.models import Registry

TYPES = ("distribution", "harbor", "jfrog")


def connector_for(registry: Registry, box: SecretBox) -> Connector:
    from hullscan.service.connectors.base import ConnectionInfo

    info = ConnectionInfo.of(registry, box)
    if registry.type == "distribution":
        from hullscan.service.connectors.distribution import DistributionConnector

        return DistributionConnector(info)
    if registry.type == "harbor":
        from hullscan.service.connectors.harbor import HarborConnector

        return HarborConnector(info)
    if registry.type == "jfrog":
        from hullscan.service.connectors.jfrog import JFrogConnector

        return JFrogConnector(info)
    raise ValueError(f"unknown registry type {registry.type!r}")
