"""The API's routers, one module per resource: alerts, operator actions, control (rules and
suppressions), evidence, operations (health, readiness, metrics, status) and pages."""
