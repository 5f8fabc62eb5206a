"""The network controller: VLAN and flat networks, fixed and elastic IPs."""
