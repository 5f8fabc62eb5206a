"""nova: an EC2-style cloud controller on Twisted."""

from setuptools import find_packages, setup

setup(
    name="nova",
    version="0.1.0",
    description="A self-hosted EC2-style cloud controller after the 2010 nova architecture",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["nova", "nova.*"]) + ["twisted.plugins"],
    package_data={"nova.rpc": ["*.xml"]},
    include_package_data=True,
    scripts=["bin/nova-manage"],
    install_requires=[
        "Twisted", "txAMQP", "ldaptor", "txredisapi", "boto", "cryptography", "attrs",
        "zope.interface",
    ],
)
