"""Programs the roles install on nodes (not imported here): the session tool and the session image's agent."""
