"""
The libvirt driver: guests as libvirt domains (KVM where the host really
supports it, TCG otherwise). Every libvirt call runs in one worker thread
per connection (L{nova.virt.libvirt.connection}); domain XML comes from pure
functions (L{nova.virt.libvirt.domain_xml}).
"""
