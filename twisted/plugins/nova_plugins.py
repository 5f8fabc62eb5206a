"""twistd plugins: one ServiceMaker per nova component (see nova/tap/)."""

from twisted.application.service import ServiceMaker

novaApi = ServiceMaker("nova-api", "nova.tap.api", "nova EC2 API server and cloud controller",
                       "nova-api")
novaAllInOne = ServiceMaker("nova-allinone", "nova.tap.allinone",
                            "every nova component in one process", "nova-allinone")
novaObjectStore = ServiceMaker("nova-objectstore", "nova.tap.objectstore",
                               "nova S3-compatible object store", "nova-objectstore")
novaCompute = ServiceMaker("nova-compute", "nova.tap.compute",
                           "nova compute node: runs instances through libvirt", "nova-compute")
novaScheduler = ServiceMaker("nova-scheduler", "nova.tap.scheduler",
                             "nova scheduler: picks a host for each new instance",
                             "nova-scheduler")
novaNetwork = ServiceMaker("nova-network", "nova.tap.network",
                           "nova network controller: fixed and elastic IPs, VLAN networks, "
                           "DHCP, NAT, metadata proxy", "nova-network")
novaVolume = ServiceMaker("nova-volume", "nova.tap.volume",
                          "nova storage worker: block volumes over NBD, iSCSI or AoE, "
                          "snapshots", "nova-volume")
