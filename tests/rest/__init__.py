"""The User Feedback REST API (seed 003) of the feedback server, over real HTTP on 127.0.0.1."""
