"""Outline inventories (RGI6, CGI-style, the built-in demo region), region specs and forcing inputs."""
