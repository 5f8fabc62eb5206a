"""
The EC2 metadata service: what a guest reads at C{http://169.254.169.254/}.

 - L{nova.api.metadata.data}: who is asking (a fixed IP) and what they are
   told (L{InstanceMetadata}, read from the datastore);
 - L{nova.api.metadata.resource}: the twisted.web tree of versions, keys and
   user-data, and the two ways a caller is identified (TCP peer, or the
   C{X-Forwarded-For} a network host's proxy sets);
 - L{nova.api.metadata.service}: nova-api's two listeners (TCP, and the unix
   socket the proxies forward to).

The proxy inside a network host lives in L{nova.network.metadata_proxy}.
See C{docs/metadata.md}.
"""
