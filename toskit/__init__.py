"""TOS host toolkit: the lab that boots test hosts, and helpers shared by roles and audits."""
