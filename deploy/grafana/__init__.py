"""Grafana dashboards as code (grafana-foundation-sdk) and provisioning (grafana-client).

See docs/grafana.md. ``deploy.grafana.dashboards`` builds and exports the dashboards,
``deploy.grafana.flux`` builds and checks their Flux, ``deploy.grafana.provision`` pushes them
(folder, datasource, dashboards) to a running Grafana through its HTTP API.
"""
