"""
The virt driver seam: how a compute node runs guests.

L{nova.virt.interfaces.IVirtDriver} is the contract; L{nova.virt.fake.FakeDriver}
keeps guests in memory and L{nova.virt.libvirt.driver.LibvirtDriver} runs them
through libvirt (KVM where the host really has it, TCG otherwise).
"""
