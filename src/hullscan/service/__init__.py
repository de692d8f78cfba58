"""The scan service: registries, images, namespaces and their policies, scans as jobs, the REST API.

It schedules, stores and decides; scanning stays the engine's one call (hullscan.pipeline).
"""
