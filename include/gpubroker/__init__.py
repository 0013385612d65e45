"""GPUBroker domain core: one offer schema, GPU registry, normalisation, storage, events."""
