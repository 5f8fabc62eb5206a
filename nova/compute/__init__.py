"""
The compute control plane: instance types, EC2 instance states, the instance
and reservation records, their repository in the datastore, and quotas.
"""
