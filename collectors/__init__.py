"""The data side of the pipeline: one module per data source.

Each source module exposes ``collect(ctx: CollectContext) -> CollectResult``
(see ``collectors.context``). Collectors never decide *when* they run; the
orchestrator's runner calls them in a child process with a timeout.
"""
