"""The GitHub forge: REST API v3 through gidgethub's sans-I/O core on httpx under trio."""
