"""The Forge port on GitLab (gitlab.com or self-managed) over REST API v4."""
