"""Shoal's manifest: a Compose file, parsed and validated into frozen specs; canonical payloads and diffs.

Pure (no I/O, no clock): text or payload in, a Manifest/ServiceSpec or a ManifestError naming the field out.
Modules: load (the only yaml import, bounded) -> manifest (top level) -> service, container, deploy, xshoal
(one section each, built from fields' typed readers and keys' table of supported/unsupported/ignored keys)
-> model (dataclasses); policy (x-shoal allow and ingress), names (the name grammar); payload (spec ->
canonical dict), diff (describe_changes), units (durations, sizes), errors (ManifestError, ManifestWarning),
limits (every bound). docs/manifest.md is the user's reference.
"""

from node.manifest.deploy import LABEL_KEY
from node.manifest.diff import describe_changes
from node.manifest.errors import ManifestError, ManifestWarning
from node.manifest.limits import MAX_PAYLOAD_BYTES, MAX_SERVICES, MAX_TEXT_BYTES
from node.manifest.manifest import parse_manifest, spec_from_payload, with_replicas
from node.manifest.model import (
                                 BLUE,
                                 GLOBAL,
                                 GREEN,
                                 REPLICATED,
                                 AllowRule,
                                 BlueGreen,
                                 Canary,
                                 Constraint,
                                 Deploy,
                                 Exec,
                                 Healthcheck,
                                 HttpGet,
                                 Ingress,
                                 Manifest,
                                 Placement,
                                 Port,
                                 Probe,
                                 Resources,
                                 ResourceSet,
                                 RestartPolicy,
                                 ServiceSpec,
                                 ShoalSettings,
                                 TcpSocket,
                                 UpdateConfig,
)
from node.manifest.payload import spec_bytes, spec_to_payload

__all__ = [
    "BLUE", "GLOBAL", "GREEN", "LABEL_KEY", "MAX_PAYLOAD_BYTES", "MAX_SERVICES", "MAX_TEXT_BYTES", "REPLICATED",
    "AllowRule", "BlueGreen", "Canary",
    "Constraint", "Deploy", "Exec", "Healthcheck", "HttpGet", "Ingress", "Manifest", "ManifestError", "ManifestWarning",
    "Placement", "Port", "Probe",
    "ResourceSet", "Resources", "RestartPolicy", "ServiceSpec", "ShoalSettings", "TcpSocket", "UpdateConfig",
    "describe_changes", "parse_manifest", "spec_bytes", "spec_from_payload", "spec_to_payload", "with_replicas",
]
