"""The operator CLI ``bfest``: the embedded dev stack, the demo, cycle control, running a service
or the worker."""
