"""Block volumes: records, repositories, the EC2 side and nova-volume (issue 6)."""
