"""The Application (release) lifecycle: status (the status machine), buildlog, queue, spec (the
only place defaults are applied), pipeline (the stages), controller (reconcile, watch, runtime
events), retention, config_changes (config_changed: the one path from a config change to a
release) and deployer (the entry points). Module map: docs/architecture.md 2.4.5a."""
