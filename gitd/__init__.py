"""git over SSH (asyncssh): arrives with issue #4."""
