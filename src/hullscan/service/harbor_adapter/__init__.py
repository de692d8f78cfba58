"""Harbor's pluggable scanner adapter (API v1.2, ../shared/specs/harbor-scanner-adapter): hullscan as Harbor's
own scanner, mounted on the service's FastAPI app beside /api/v1/scans.

Design choices, and why:

- **One queue for every scan.** A scan request is not run on the side: it becomes an ordinary `scans` row (trigger
  `harbor`, priority of a push) of an image under a registry record for that Harbor, so the per-registry and
  global caps, the 3-hour deadline, stop requests, retries after a lost worker and the failure catalogue all hold
  as for any other scan, and the console, metrics and pull gate see these scans too. The registry record is made
  on the first request from the request's `registry.url` (type `harbor`, `managed_by = "harbor-adapter"`, plain
  HTTP when the URL says `http`); an admin may adjust it (TLS, its scan cap) like any registry. It keeps no
  credentials and is never synchronised: images arrive with the requests.
- **Credentials live as long as the scan, sealed.** Harbor sends a robot account's `Basic` credentials (or a
  `Bearer` registry token) with each request, valid for that scan job only. They go on the scan row encrypted
  with the service's SecretBox (`scans.pull_authorization`) and are erased whenever the scan ends, whatever the
  ending (jobs/queue.py). Keeping them only in memory would do for the in-process executor, but a fleet's Celery
  workers run scans in other processes and must find them in the row; a restart mid-scan must too. A queued scan
  joined by a later request takes that request's credentials: Harbor deletes each job's robot when the job ends.
- **Ids.** `<scan id>-<16 hex digits of the digest>`: the spec allows any string; the digest part makes an id from
  another database life answer 404, never another image's report. Two requests for a digest already queued or
  running share its scan, as all scans do. Only scans of adapter-managed registries are reachable here.
- **Who may call.** Harbor sends the Authorization configured in its scanner registration: an admin's API token
  (`Bearer`) or user and password (`Basic`), checked like every API call. Admin, because the first request of a
  new Harbor creates a registry.
- **What is scanned.** The `vuln` item only (Harbor shows vulnerabilities and SBOMs; the inventory behind both is
  always collected). Reports are drawn from the stored report on each request, in the negotiated type: Harbor's
  vulnerability report (`...harbor+json; version=1.0` and `...vulnerability.report; version=1.1` share its
  schema), the raw form (hullscan's JSON report), or the SBOM report in SPDX or CycloneDX.
- **Waiting and failing.** A scan queued or running answers 302 with `Refresh-After` (settings:
  `harbor_refresh_after`); a failed or stopped scan 500 with the catalogue's cause, what happened and the solution
  as `error.message`, which Harbor writes to the scan job's log.
"""

from hullscan.service.harbor_adapter.router import router

__all__ = ["router"]
