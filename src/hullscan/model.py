"""Domain objects that flow through the pipeline: source -> layers -> facts -> image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Ecosystem names used by hullscan; OS package ecosystems get their purl at merge time, when the
# distribution (which may live in another layer) is known.
OS_ECOSYSTEMS = frozenset({"deb", "apk", "rpm"})

# How a package was identified (Package.method), strongest first. A report shows it with the file that produced
# it (Package.path) so a user can tell a weak identification from a strong one.
EVIDENCE_METHODS = (
    "package-database",     # an OS or environment package database: dpkg, apk, rpm, opkg, rpm manifest, conda-meta
    "installed-metadata",   # an installed package's own metadata: dist-info, egg-info, package.json, gemspec, ...
    "lock-file",            # a lock file or dependency manifest: what an install would put there
    "build-info",           # build information the toolchain embeds in a binary (Go, cargo-auditable)
    "pom-properties",       # META-INF/maven/**/pom.properties inside a Java archive
    "pom-xml",              # META-INF/maven/**/pom.xml inside a Java archive (no pom.properties)
    "jenkins-manifest",     # a Jenkins plug-in's manifest (Short-Name, Plugin-Version, Group-Id)
    "archive-manifest",     # a Java archive's MANIFEST.MF Implementation-* headers
    "osgi-manifest",        # MANIFEST.MF Bundle-SymbolicName / Bundle-Version
    "elf-note",             # an ELF .note.package (systemd's package metadata note)
    "pe-version-resource",  # a Windows PE file's VS_VERSIONINFO resource (.NET assemblies without deps.json)
    "release-file",         # a runtime's release file (a JDK's `release`)
    "record",               # a Python wheel's RECORD, its dist-info directory naming the package (no METADATA)
    "binary-signature",     # a version string inside a binary that no package database owns
    "file-name",            # only the file name (artifact-1.2.3.jar)
)
# Packages found in binaries rather than in a package database: skipped when a package database owns the file.
BINARY_METHODS = frozenset({"binary-signature", "elf-note", "pe-version-resource", "release-file"})


@dataclass(slots=True)
class FileEntry:
    """One tar member (or one file of a root filesystem), with its path already normalised."""

    path: str
    type: str  # "f" file, "d" dir, "l" symlink, "h" hard link, "c"/"b" device, "p" fifo
    size: int = 0
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    linkname: str = ""

    @property
    def is_file(self) -> bool:
        return self.type == "f"

    @property
    def executable(self) -> bool:
        return self.type == "f" and bool(self.mode & 0o111)


@dataclass
class Package:
    name: str
    version: str
    ecosystem: str  # deb, apk, rpm, opkg, pypi, npm, maven, golang, cargo, gem, composer, nuget, conda, binary
    path: str = ""  # where it was found (the database file or the metadata file)
    purl: str = ""
    licenses: list[str] = field(default_factory=list)
    source_name: str = ""  # dpkg source package, rpm source rpm name, apk origin
    source_version: str = ""
    arch: str = ""
    epoch: int | None = None
    release: str = ""  # rpm release
    vendor: str = ""
    # Where the package came from in the image: filled by the merge.
    layer_index: int = -1
    layer_diff_id: str = ""
    layer_created_by: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    method: str = ""  # one of EVIDENCE_METHODS: how the file at `path` identified the package
    cpe: str = ""  # CPE 2.3 name, for packages with no ecosystem of their own (binaries)

    @property
    def dev(self) -> bool:
        """Only needed to develop the project (a lock file's dev dependency): users may filter it out."""
        return self.metadata.get("dev") == "true"

    @property
    def key(self) -> tuple[str, str, str, str, str, str]:
        """Identity of an installed package within one database file (rpm keeps kernels side by side)."""
        return (self.ecosystem, self.name, self.version, self.release, str(self.epoch), self.arch)


@dataclass
class OSInfo:
    family: str  # os-release ID: debian, ubuntu, alpine, rhel, centos, rocky, almalinux, sles, ...
    version: str = ""  # VERSION_ID, or the release file's version
    codename: str = ""
    name: str = ""  # PRETTY_NAME or NAME
    id_like: list[str] = field(default_factory=list)
    source: str = ""  # the file it came from
    priority: int = 0  # higher wins when several files describe the OS


@dataclass
class Note:
    """A warning the report shows: something was skipped, clamped or looked hostile."""

    code: str
    message: str
    path: str = ""
    layer_index: int = -1


@dataclass
class Detection:
    """Something found inside one file while walking a layer: a secret, a malicious file, ...

    Kept for every layer, not only the final image: a secret deleted by a later layer can still be
    pulled out of the layer that added it.
    """

    kind: str  # secret | malware
    rule_id: str
    title: str
    severity: str  # CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN
    path: str = ""
    line: int = 0
    match: str = ""  # a redacted excerpt; never the secret itself
    engine: str = ""  # for malware: yara, clamav, sha256-blocklist
    sha256: str = ""
    category: str = ""
    remediation: str = ""
    layer_index: int = -1
    layer_diff_id: str = ""
    layer_created_by: str = ""
    in_final_image: bool = True


@dataclass
class FileFacts:
    """What analyzers learned from one file."""

    packages: list[Package] = field(default_factory=list)
    os: OSInfo | None = None
    # Facts that only make sense once every layer is merged (e.g. licences from dpkg copyright files).
    hints: dict[str, Any] = field(default_factory=dict)
    detections: list[Detection] = field(default_factory=list)
    # Facts too sensitive to keep (e.g. password hashes): they live only as long as the scan that read them and
    # never enter the layer cache, the scan store or a report (nor a repr, which ends up in logs and tracebacks).
    private: dict[str, Any] = field(default_factory=dict, repr=False)

    def empty(self) -> bool:
        return not self.packages and self.os is None and not self.hints and not self.detections and not self.private


@dataclass
class LayerFacts:
    """Everything learned from one layer: a pure function of its content and the analyzer versions."""

    diff_id: str
    analyzers_key: str
    files: dict[str, FileFacts] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)  # paths deleted by this layer
    opaque_dirs: list[str] = field(default_factory=list)  # directories this layer clears
    entries: list[FileEntry] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    uncompressed_size: int = 0


@dataclass
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().split("/")
        if len(parts) < 2 or len(parts) > 3 or not all(parts):
            raise ValueError(f"platform must be os/arch[/variant], got {text!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)
    platform: Platform | None = None
    urls: list[str] = field(default_factory=list)


@dataclass
class LayerInfo:
    index: int
    descriptor: Descriptor
    diff_id: str
    created_by: str = ""


@dataclass
class ImageFacts:
    """The merged view of an image and what it holds."""

    reference: str
    manifest_digest: str = ""
    config_digest: str = ""
    platform: Platform = field(default_factory=Platform)
    config: dict[str, Any] = field(default_factory=dict)  # the image config JSON as found
    config_size: int = 0  # the config blob's size as the manifest declares it; 0 when unknown (local sources)
    layers: list[LayerInfo] = field(default_factory=list)
    os: OSInfo | None = None
    packages: list[Package] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    files: list[tuple[FileEntry, int]] = field(default_factory=list)  # final file tree, entry + layer
    detections: list[Detection] = field(default_factory=list)  # from every layer (see Detection)
    # Final content of small configuration files analyzers kept for image-level checks (path -> text; account
    # files with their password hashes redacted), and the sha256 of those whose text was redacted.
    config_files: dict[str, str] = field(default_factory=dict)
    config_digests: dict[str, str] = field(default_factory=dict)
    # The final files' private facts (path -> FileFacts.private), for layers read in this scan only: a layer whose
    # facts came from the cache has none. Never stored, never rendered.
    private: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    file_hashes: dict[str, str] = field(default_factory=dict)  # path -> sha256 hex, when the file-hash analyzer ran
    # Manifest annotations (org.opencontainers.image.base.name / .base.digest name the base image).
    annotations: dict[str, str] = field(default_factory=dict)
