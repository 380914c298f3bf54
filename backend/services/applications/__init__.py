"""The Application (release) lifecycle. ``status``: the status machine every component uses."""
