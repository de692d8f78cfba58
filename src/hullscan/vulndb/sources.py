"""Where `db update` fetches its data: one place for the default URLs, each overridable through the settings
(hullscan.settings: the TOML file, or the environment variables below) or the command line. An empty URL turns
that source off.

| source | default | environment |
|---|---|---|
| OSV bucket (`<Ecosystem>/all.zip`, `modified_id.csv`, `<ID>.json`) | OSV's public bucket | HULLSCAN_OSV_URL |
| CVE records (CVE List V5, a zip of CVE JSON 5 records) | the cvelistV5 repository's archive | HULLSCAN_CVE_URL |
| NVD CVE API 2.0 JSON (a file or a zip of them) | off | HULLSCAN_NVD_URL |
| EPSS daily CSV (gzipped) | FIRST's current file | HULLSCAN_EPSS_URL |
| CISA KEV catalogue (JSON) | CISA's feed | HULLSCAN_KEV_URL |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_OSV_URL = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_CVE_URL = "https://github.com/CVEProject/cvelistV5/archive/refs/heads/main.zip"
DEFAULT_EPSS_URL = "https://epss.cyentia.com/epss_scores-current.csv.gz"
DEFAULT_KEV_URL = "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"

@dataclass(frozen=True)
class DataSources:
    osv: str = DEFAULT_OSV_URL
    cve: str = DEFAULT_CVE_URL
    nvd: str = ""
    epss: str = DEFAULT_EPSS_URL
    kev: str = DEFAULT_KEV_URL

    @classmethod
    def from_settings(cls, settings: Any) -> DataSources:
        """From hullscan.settings.Settings (its osv_url, cve_url, nvd_url, epss_url, kev_url)."""
        return cls(osv=settings.osv_url, cve=settings.cve_url, nvd=settings.nvd_url, epss=settings.epss_url,
                   kev=settings.kev_url)

    @classmethod
    def only_osv(cls, osv: str = DEFAULT_OSV_URL) -> DataSources:
        return cls(osv=osv, cve="", nvd="", epss="", kev="")

    def enrichment(self) -> dict[str, str]:
        """The enrichment sources that are on: {"cve": url, "nvd": url, "epss": url, "kev": url}."""
        return {k: v for k, v in (("cve", self.cve), ("nvd", self.nvd), ("epss", self.epss), ("kev", self.kev)) if v}
