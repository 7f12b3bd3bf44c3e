"""The supervisors' API: HTTP/JSON over a Unix socket, served by `ivr serve` alone."""
