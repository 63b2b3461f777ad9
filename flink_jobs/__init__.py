"""The PyFlink jobs: the streaming speed layer and the batch recompute."""
