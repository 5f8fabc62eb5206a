"""
The object store's HTTP face: S3 on twisted.web over an
L{nova.objectstore.interfaces.IObjectStore}.

    - L{site}: C{build_site(store, auth, clock, config, run_in_thread)}.
    - L{service}: from a request to an operation's response or error.
    - L{request}: the request class that streams uploads, after authentication.
    - L{resource}: the twisted.web resource and response writing.
    - L{routing}: path and virtual-host addressing, the operation a request names.
    - L{auth}: authentication (SigV2/SigV4) and authorisation (projects, canned ACLs).
    - L{buckets}, L{objects}, L{copy}, L{listing}, L{multipart}: the operations.
    - L{ranges}, L{conditionals}, L{digests}, L{chunked}: request details.
    - L{xmlrender}, L{xmlparse}: S3's XML documents.
    - L{producers}: streaming object bodies out (sendfile where possible).
"""

from nova.objectstore.http.site import build_service, build_site

__all__ = ["build_service", "build_site"]
